import { readEnv, readFlag, readServerConfig, type AdminListener, type ServerConfig } from '@reg/app-kit'
import type { ConnectNativeOutbound } from '@reg/fastify-consul'
import type { GatewayOptions } from './app.js'
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
  /** GATEWAY_DASHBOARD: serve the live view at /_gateway/ on the admin port. Off by default: it shows internal addresses. */
  dashboard: boolean
  /** GATEWAY_DASHBOARD_HOSTS: names the live view answers to besides loopback ones (comma-separated). */
  dashboardHosts: string[]
  /** REG_FAILOVER: datacenters to fail over to, in priority order after the local agent's own; [] for none. */
  failover: string[]
  /** REG_ZONE: the gateway's zone, registered as meta `zone` and preferred among the upstream's instances. */
  zone: string | undefined
  /** REG_CONNECT: call the upstream's Connect-native instances over mutual TLS with the gateway's leaf. Default false. */
  connect: boolean
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

  const dashboard = readFlag(env, 'GATEWAY_DASHBOARD', problems)
  const connect = readFlag(env, 'REG_CONNECT', problems)

  const pseudonym = readEnv(env, 'GATEWAY_PSEUDONYM')
  if (pseudonym !== undefined && !isPseudonym(pseudonym)) {
    problems.push(`GATEWAY_PSEUDONYM must be an RFC 9110 token (letters, digits and !#$%&'*+-.^_\`|~), got "${pseudonym}"`)
  }

  const dashboardHosts = (readEnv(env, 'GATEWAY_DASHBOARD_HOSTS') ?? '').split(',').map((host) => host.trim()).filter(Boolean)
  const badHost = dashboardHosts.find((host) => !isHostName(host))
  if (badHost !== undefined) problems.push(`GATEWAY_DASHBOARD_HOSTS must be host names separated by commas, got "${badHost}"`)

  const rawFailover = readEnv(env, 'REG_FAILOVER')
  const failover = rawFailover === undefined ? [] : rawFailover.split(',').map((dc) => dc.trim())
  const failoverProblem = datacenterListProblem(failover)
  if (failoverProblem !== undefined) problems.push(`REG_FAILOVER must be ${failoverProblem}, got "${rawFailover}"`)

  if (problems.length > 0) throw new ConfigError(problems.join('; '))
  return {
    ...config,
    upstream: readEnv(env, 'UPSTREAM_SERVICE') ?? DEFAULTS.upstream,
    pseudonym,
    dashboard,
    dashboardHosts,
    failover,
    zone: readEnv(env, 'REG_ZONE'),
    connect
  }
}

/**
 * The characters Consul agents have accepted in a datacenter name (`[a-zA-Z0-9_-]+`). Current agents
 * lowercase their own, so `DC2` passes here and is then refused at ready() as a datacenter Consul does
 * not know, which names the known ones: the case is for Consul to judge, the shape for us.
 */
const DATACENTER = /^[A-Za-z0-9_-]+$/

/**
 * What is wrong with a failover list, or undefined. Unlike GATEWAY_DASHBOARD_HOSTS, an empty entry is
 * refused, not skipped: in a priority list `dc2,,dc3` more likely lost a name than gained a comma. A
 * name given twice is refused too: its second place would mean nothing, so the order is probably wrong.
 */
function datacenterListProblem (datacenters: readonly string[]): string | undefined {
  const expected = 'datacenter names (letters, digits, _ and -) separated by commas, in priority order'
  if (!datacenters.every((dc) => DATACENTER.test(dc))) return expected
  const twice = datacenters.find((dc, i) => datacenters.indexOf(dc) !== i)
  if (twice !== undefined) return `${expected}, each named once ("${twice}" is repeated)`
  return undefined
}

/**
 * The plugin options server.ts registers the gateway with, from the environment and the admin listener
 * serve() bound. Pure, so a test builds the app exactly as the process does
 * (`buildGateway(t, gatewayOptions(loadConfig(env)))`).
 * The Connect handle, when REG_CONNECT asks for one, comes from server.ts's `prepare` (it must exist
 * before the app is built, and awaiting it is the process's job, not this pure function's).
 */
export function gatewayOptions (config: Config, admin?: AdminListener, connect?: ConnectNativeOutbound): GatewayOptions {
  return {
    admin,
    connect,
    upstream: config.upstream,
    serviceId: config.serviceId,
    pseudonym: config.pseudonym,
    consul: config.consul,
    dashboard: config.dashboard && { allowedHosts: config.dashboardHosts },
    failover: config.failover,
    zone: config.zone
  }
}
