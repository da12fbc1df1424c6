import { readEnv, readServerConfig, type ServerConfig } from '@reg/app-kit'
import { ConfigError } from './errors.js'
import { isHostName } from './dashboard-host.js'
import { isPseudonym } from './via.js'

// The server's environment, read and validated in one pure function so every rule is unit-tested
// without spawning a process. The variables every app reads (PORT, HOST, SERVICE_ID, LOG_LEVEL and
// Consul's address and token) are read by @reg/app-kit; this adds the gateway's own.

export interface Config extends ServerConfig {
  /** Consul service name of the instances /users is proxied to. */
  upstream: string
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

/** Throws {@link ConfigError} naming every bad variable at once, so one restart fixes them all. */
export function loadConfig (env: NodeJS.ProcessEnv): Config {
  const { config, problems } = readServerConfig(env, DEFAULTS)

  const rawDashboard = readEnv(env, 'GATEWAY_DASHBOARD')?.toLowerCase()
  const dashboard = rawDashboard === 'true' || rawDashboard === '1'
  if (rawDashboard !== undefined && !['true', '1', 'false', '0'].includes(rawDashboard)) {
    problems.push(`GATEWAY_DASHBOARD must be true or false, got "${readEnv(env, 'GATEWAY_DASHBOARD')}"`)
  }

  const pseudonym = readEnv(env, 'GATEWAY_PSEUDONYM')
  if (pseudonym !== undefined && !isPseudonym(pseudonym)) {
    problems.push(`GATEWAY_PSEUDONYM must be an RFC 9110 token (letters, digits and !#$%&'*+-.^_\`|~), got "${pseudonym}"`)
  }

  const dashboardHosts = (readEnv(env, 'GATEWAY_DASHBOARD_HOSTS') ?? '').split(',').map((host) => host.trim()).filter(Boolean)
  const badHost = dashboardHosts.find((host) => !isHostName(host))
  if (badHost !== undefined) problems.push(`GATEWAY_DASHBOARD_HOSTS must be host names separated by commas, got "${badHost}"`)

  if (problems.length > 0) throw new ConfigError(problems.join('; '))
  return {
    ...config,
    upstream: readEnv(env, 'UPSTREAM_SERVICE') ?? DEFAULTS.upstream,
    pseudonym,
    dashboard,
    dashboardHosts
  }
}
