import { ConfigError } from './errors.js'
import { isHostName } from './dashboard-host.js'
import { isPseudonym } from './via.js'

// The server's environment, read and validated in one pure function so every rule is unit-tested
// without spawning a process. Consul's own variables beyond address and token (CONSUL_HTTP_TOKEN_FILE,
// CONSUL_HTTP_SSL, CONSUL_CACERT, …) are read by @reg/fastify-consul itself.

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

export interface Config {
  port: number
  host: string
  /** Consul service name of the instances /users is proxied to. */
  upstream: string
  /** The gateway's own Consul service id; undefined lets @reg/fastify-consul derive one. */
  serviceId: string | undefined
  logLevel: LogLevel
  consul: { address?: string, token?: string }
  /** GATEWAY_PSEUDONYM: the gateway's name in Via; undefined: its service id. */
  pseudonym: string | undefined
  /** GATEWAY_DASHBOARD: serve the live view at /_gateway/. Off by default: it shows internal addresses. */
  dashboard: boolean
  /** GATEWAY_DASHBOARD_HOSTS: names the live view answers to besides loopback ones (comma-separated). */
  dashboardHosts: string[]
}

export const DEFAULTS: Readonly<Pick<Config, 'port' | 'host' | 'upstream' | 'logLevel'>> = Object.freeze({
  port: 8080,
  host: '127.0.0.1',
  upstream: 'user-service',
  logLevel: 'info'
})

/** Unset and empty are the same: compose files and shells often export `VAR=`. */
function read (env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim()
  return value === undefined || value === '' ? undefined : value
}

/** Throws {@link ConfigError} naming every bad variable at once, so one restart fixes them all. */
export function loadConfig (env: NodeJS.ProcessEnv): Config {
  const problems: string[] = []

  let port = DEFAULTS.port
  const rawPort = read(env, 'PORT')
  if (rawPort !== undefined) {
    port = /^[0-9]{1,5}$/.test(rawPort) ? Number(rawPort) : NaN
    // 0 asks the OS for a free port; the Consul registration uses whichever port was bound.
    if (!(port >= 0 && port <= 65535)) problems.push(`PORT must be an integer from 0 to 65535, got "${rawPort}"`)
  }

  const rawLevel = read(env, 'LOG_LEVEL')
  const logLevel = LOG_LEVELS.find((level) => level === rawLevel?.toLowerCase()) ?? DEFAULTS.logLevel
  if (rawLevel !== undefined && logLevel !== rawLevel.toLowerCase()) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${rawLevel}"`)
  }

  const rawDashboard = read(env, 'GATEWAY_DASHBOARD')?.toLowerCase()
  const dashboard = rawDashboard === 'true' || rawDashboard === '1'
  if (rawDashboard !== undefined && !['true', '1', 'false', '0'].includes(rawDashboard)) {
    problems.push(`GATEWAY_DASHBOARD must be true or false, got "${read(env, 'GATEWAY_DASHBOARD')}"`)
  }

  const pseudonym = read(env, 'GATEWAY_PSEUDONYM')
  if (pseudonym !== undefined && !isPseudonym(pseudonym)) {
    problems.push(`GATEWAY_PSEUDONYM must be an RFC 9110 token (letters, digits and !#$%&'*+-.^_\`|~), got "${pseudonym}"`)
  }

  const dashboardHosts = (read(env, 'GATEWAY_DASHBOARD_HOSTS') ?? '').split(',').map((host) => host.trim()).filter(Boolean)
  const badHost = dashboardHosts.find((host) => !isHostName(host))
  if (badHost !== undefined) problems.push(`GATEWAY_DASHBOARD_HOSTS must be host names separated by commas, got "${badHost}"`)

  if (problems.length > 0) throw new ConfigError(problems.join('; '))

  const address = read(env, 'CONSUL_HTTP_ADDR')
  const token = read(env, 'CONSUL_HTTP_TOKEN')
  return {
    port,
    host: read(env, 'HOST') ?? DEFAULTS.host,
    upstream: read(env, 'UPSTREAM_SERVICE') ?? DEFAULTS.upstream,
    serviceId: read(env, 'SERVICE_ID'),
    pseudonym,
    logLevel,
    dashboard,
    dashboardHosts,
    consul: {
      ...(address === undefined ? {} : { address }),
      ...(token === undefined ? {} : { token })
    }
  }
}
