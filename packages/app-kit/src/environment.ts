// The variables every sample app reads the same way (PORT, HOST, ADMIN_PORT, ADMIN_HOST, SERVICE_ID,
// LOG_LEVEL, CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN), read by one pure function so each app's loadConfig adds only its own variables and
// reports every bad one at once. Consul's other variables (CONSUL_HTTP_TOKEN_FILE, CONSUL_HTTP_SSL,
// CONSUL_CACERT, …) are read by @reg/fastify-consul itself.

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

/** What the process around an app needs from the environment: where to listen, how to log, which Consul. */
export interface ServerConfig {
  port: number
  host: string
  /** ADMIN_PORT: the admin listener's port (/metrics, the detailed /health, the gateway's live view); 0 lets the OS pick. */
  adminPort: number
  /** ADMIN_HOST: the admin listener's address. Loopback by default, as Envoy's and Linkerd's admin ports. */
  adminHost: string
  /** The app's own Consul service id; undefined lets @reg/fastify-consul derive one. */
  serviceId: string | undefined
  logLevel: LogLevel
  consul: { address?: string, token?: string }
}

export type ServerDefaults = Readonly<Pick<ServerConfig, 'port' | 'host' | 'logLevel'>>

/** The admin port is PORT + this unless ADMIN_PORT says otherwise (3000 → 4000, 8080 → 9080). */
export const ADMIN_PORT_OFFSET = 1000
/** ADMIN_HOST's default: only this host can read the admin listener. */
export const ADMIN_HOST = '127.0.0.1'

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

  // 0 asks the OS for a free port; the Consul registration uses whichever port was bound.
  const port = readPort(env, 'PORT', defaults.port, problems)
  // PORT + 1000, unless that is not a port: then it must be said. With PORT=0 the OS picks both.
  const derived = port === 0 ? 0 : port + ADMIN_PORT_OFFSET
  const rawAdminPort = readEnv(env, 'ADMIN_PORT')
  const adminPort = readPort(env, 'ADMIN_PORT', derived, problems)
  if (rawAdminPort === undefined && derived > 65535) {
    problems.push(`ADMIN_PORT must be set when PORT + ${ADMIN_PORT_OFFSET} is above 65535 (PORT is ${port})`)
  } else if (adminPort !== 0 && adminPort === port) {
    problems.push(`ADMIN_PORT must differ from PORT, got "${rawAdminPort}" for both`)
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
    adminPort,
    adminHost: readEnv(env, 'ADMIN_HOST') ?? ADMIN_HOST,
    serviceId: readEnv(env, 'SERVICE_ID'),
    logLevel,
    consul: {
      ...(address === undefined ? {} : { address }),
      ...(token === undefined ? {} : { token })
    }
  }
  return { config, problems }
}

/** A port variable: unset is `fallback`; anything but an integer from 0 to 65535 is a problem. */
function readPort (env: NodeJS.ProcessEnv, name: string, fallback: number, problems: string[]): number {
  const raw = readEnv(env, name)
  if (raw === undefined) return fallback
  const port = /^[0-9]{1,5}$/.test(raw) ? Number(raw) : NaN
  if (port >= 0 && port <= 65535) return port
  problems.push(`${name} must be an integer from 0 to 65535, got "${raw}"`)
  return fallback
}

/**
 * A yes/no variable: `true`/`1` or `false`/`0`, in any case; unset is false. Anything else is a problem,
 * not a silent false: `REG_CONNECT=yes` read as "off" would serve plain HTTP to someone who asked for mTLS.
 */
export function readFlag (env: NodeJS.ProcessEnv, name: string, problems: string[]): boolean {
  const raw = readEnv(env, name)
  const value = raw?.toLowerCase()
  if (value === undefined || value === 'false' || value === '0') return false
  if (value === 'true' || value === '1') return true
  problems.push(`${name} must be true or false, got "${raw}"`)
  return false
}
