import { readEnv, readFlag, readServerConfig, type ServerConfig } from '@reg/app-kit'
import { ConfigError } from './errors.js'

// The server's environment, read and validated in one pure function so every rule is unit-tested
// without spawning a process. The variables every app reads (PORT, HOST, SERVICE_ID, LOG_LEVEL and
// Consul's address and token) are read by @reg/app-kit; this adds the user-service's own.

export interface Config extends ServerConfig {
  serviceName: string
  usersDb: string
  /** REG_ZONE: the instance's zone, registered as meta `zone` for callers that prefer their own zone. */
  zone: string | undefined
  /** REG_CONNECT: serve Connect-native mutual TLS on PORT (the admin port stays plain HTTP). Default false. */
  connect: boolean
}

export const DEFAULTS: Readonly<Pick<Config, 'port' | 'host' | 'serviceName' | 'usersDb' | 'logLevel'>> = Object.freeze({
  port: 3000,
  host: '127.0.0.1',
  serviceName: 'user-service',
  usersDb: './users.db',
  logLevel: 'info'
})

/** Throws {@link ConfigError} naming every bad variable at once, so one restart fixes them all. */
export function loadConfig (env: NodeJS.ProcessEnv): Config {
  const { config, problems } = readServerConfig(env, DEFAULTS)
  const connect = readFlag(env, 'REG_CONNECT', problems)
  if (problems.length > 0) throw new ConfigError(problems.join('; '))
  return {
    ...config,
    serviceName: readEnv(env, 'SERVICE_NAME') ?? DEFAULTS.serviceName,
    usersDb: readEnv(env, 'USERS_DB') ?? DEFAULTS.usersDb,
    zone: readEnv(env, 'REG_ZONE'),
    connect
  }
}
