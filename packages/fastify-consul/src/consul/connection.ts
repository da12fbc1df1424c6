import { readFileSync } from 'node:fs'
import { Type } from '@sinclair/typebox'
import { InvalidOptionError, TokenFileError } from '../errors.js'

/** The `consul` option's schema; descriptions are the "expected …" half of its errors. */
export const ConnectionSchema = Type.Object({
  address: Type.Optional(Type.String({ minLength: 1, description: 'host:port or an http(s) URL' })),
  token: Type.Optional(Type.String({ description: 'a string' })),
  tokenFile: Type.Optional(Type.String({ minLength: 1, description: 'a file path' })),
  secure: Type.Optional(Type.Boolean({ description: 'a boolean' })),
  ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM text' })),
  rejectUnauthorized: Type.Optional(Type.Boolean({ description: 'a boolean' }))
}, { additionalProperties: false, description: 'an object { address?, token?, tokenFile?, secure?, ca?, rejectUnauthorized? }' })

/** How to reach the Consul agent. Every field also has a Consul CLI environment variable. */
export interface ConsulConnectionOptions {
  /** `host:port` or a URL. Env: CONSUL_HTTP_ADDR. Default `127.0.0.1:8500`. */
  address?: string
  /** ACL token, sent as `X-Consul-Token`. Env: CONSUL_HTTP_TOKEN. */
  token?: string
  /** File holding the ACL token. Env: CONSUL_HTTP_TOKEN_FILE. `token` wins, as in Consul's Go client. */
  tokenFile?: string
  /** Use HTTPS. Env: CONSUL_HTTP_SSL. Implied by an `https://` address. */
  secure?: boolean
  /** PEM CA bundle (contents, not a path). Env: CONSUL_CACERT (a path). */
  ca?: string
  /** Verify the agent's certificate. Env: CONSUL_HTTP_SSL_VERIFY. Default true. */
  rejectUnauthorized?: boolean
}

export interface ResolvedConnection {
  /** `http(s)://host:port`, without a trailing slash or path. */
  origin: string
  host: string
  port: number
  secure: boolean
  token: string | undefined
  ca: string | undefined
  rejectUnauthorized: boolean
}

function envBool (value: string | undefined, name: string): boolean | undefined {
  if (value === undefined || value === '') return undefined
  if (/^(1|true|yes|on)$/i.test(value)) return true
  if (/^(0|false|no|off)$/i.test(value)) return false
  throw new InvalidOptionError(name, 'a boolean (true/false/1/0)')
}

function readSecretFile (path: string): string {
  try {
    return readFileSync(path, 'utf8').trim()
  } catch (err) {
    throw new TokenFileError(path, String((err as NodeJS.ErrnoException).code))
  }
}

/**
 * Explicit options first, then Consul's own CLI variables, then the agent's default address; the same
 * precedence as Consul's Go client, so an app behaves like `consul` on the same shell.
 */
export function resolveConnection (opts: ConsulConnectionOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedConnection {
  const raw = (opts.address ?? env.CONSUL_HTTP_ADDR ?? '127.0.0.1:8500').trim()
  const field = opts.address !== undefined ? 'consul.address' : env.CONSUL_HTTP_ADDR !== undefined ? 'CONSUL_HTTP_ADDR' : 'consul.address'
  const secureFlag = opts.secure ?? envBool(env.CONSUL_HTTP_SSL, 'CONSUL_HTTP_SSL')

  let url: URL
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `${secureFlag ? 'https' : 'http'}://${raw}`)
  } catch {
    throw new InvalidOptionError(field, `host:port or an http(s) URL, got "${raw}"`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidOptionError(field, `an http(s) address (unix sockets are not supported), got "${url.protocol}"`)
  }
  if (url.username || url.password || (url.pathname !== '/' && url.pathname !== '')) {
    throw new InvalidOptionError(field, 'host:port without credentials or a path')
  }
  const secure = url.protocol === 'https:' || secureFlag === true
  const port = url.port ? Number(url.port) : (secure ? 8501 : 8500)
  const host = url.hostname

  let token = opts.token
  if (token === undefined && opts.tokenFile !== undefined) token = readSecretFile(opts.tokenFile)
  if (token === undefined && env.CONSUL_HTTP_TOKEN) token = env.CONSUL_HTTP_TOKEN
  if (token === undefined && env.CONSUL_HTTP_TOKEN_FILE) token = readSecretFile(env.CONSUL_HTTP_TOKEN_FILE)
  if (token === '') token = undefined

  let ca = opts.ca
  if (ca === undefined && env.CONSUL_CACERT) {
    try {
      ca = readFileSync(env.CONSUL_CACERT, 'utf8')
    } catch (err) {
      throw new InvalidOptionError('CONSUL_CACERT', `a readable PEM file (${(err as NodeJS.ErrnoException).code})`)
    }
  }
  const rejectUnauthorized = opts.rejectUnauthorized ?? envBool(env.CONSUL_HTTP_SSL_VERIFY, 'CONSUL_HTTP_SSL_VERIFY') ?? true

  return {
    origin: `${secure ? 'https' : 'http'}://${host}:${port}`,
    host: host.replace(/^\[|\]$/g, ''),
    port,
    secure,
    token,
    ca,
    rejectUnauthorized
  }
}
