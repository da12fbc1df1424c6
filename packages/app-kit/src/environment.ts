// The variables every sample app reads the same way (PORT, HOST, SERVICE_ID, LOG_LEVEL, CONSUL_HTTP_ADDR,
// CONSUL_HTTP_TOKEN), read by one pure function so each app's loadConfig adds only its own variables and
// reports every bad one at once. Consul's other variables (CONSUL_HTTP_TOKEN_FILE, CONSUL_HTTP_SSL,
// CONSUL_CACERT, …) are read by @reg/fastify-consul itself.

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

/** What the process around an app needs from the environment: where to listen, how to log, which Consul. */
export interface ServerConfig {
  port: number
  host: string
  /** The app's own Consul service id; undefined lets @reg/fastify-consul derive one. */
  serviceId: string | undefined
  logLevel: LogLevel
  consul: { address?: string, token?: string }
}

export type ServerDefaults = Readonly<Pick<ServerConfig, 'port' | 'host' | 'logLevel'>>

/** Unset and empty are the same: compose files and shells often export `VAR=`. */
export function readEnv (env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim()
  return value === undefined || value === '' ? undefined : value
}

/**
 * The common variables, with `problems` listing every bad one (`PORT must be …, got "abc"`). The config is
 * only meaningful when `problems` is empty; the app adds its own problems and throws once.
 */
export function readServerConfig (env: NodeJS.ProcessEnv, defaults: ServerDefaults): { config: ServerConfig, problems: string[] } {
  const problems: string[] = []

  let port = defaults.port
  const rawPort = readEnv(env, 'PORT')
  if (rawPort !== undefined) {
    port = /^[0-9]{1,5}$/.test(rawPort) ? Number(rawPort) : NaN
    // 0 asks the OS for a free port; the Consul registration uses whichever port was bound.
    if (!(port >= 0 && port <= 65535)) problems.push(`PORT must be an integer from 0 to 65535, got "${rawPort}"`)
  }

  const rawLevel = readEnv(env, 'LOG_LEVEL')
  const logLevel = LOG_LEVELS.find((level) => level === rawLevel?.toLowerCase()) ?? defaults.logLevel
  if (rawLevel !== undefined && logLevel !== rawLevel.toLowerCase()) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${rawLevel}"`)
  }

  const address = readEnv(env, 'CONSUL_HTTP_ADDR')
  const token = readEnv(env, 'CONSUL_HTTP_TOKEN')
  const config: ServerConfig = {
    port,
    host: readEnv(env, 'HOST') ?? defaults.host,
    serviceId: readEnv(env, 'SERVICE_ID'),
    logLevel,
    consul: {
      ...(address === undefined ? {} : { address }),
      ...(token === undefined ? {} : { token })
    }
  }
  return { config, problems }
}
