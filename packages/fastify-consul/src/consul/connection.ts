import { Type } from '@sinclair/typebox'
import { InvalidOptionError } from '../errors.js'

const Path = (what: string): ReturnType<typeof Type.String> => Type.String({ minLength: 1, description: what })

/** The `consul` option's schema; descriptions are the "expected …" half of its errors. */
export const ConnectionSchema = Type.Object({
  address: Type.Optional(Type.String({ minLength: 1, description: 'host:port, an http(s) URL or unix:///path/to/socket' })),
  token: Type.Optional(Type.String({ description: 'a string' })),
  tokenFile: Type.Optional(Path('a file path')),
  secure: Type.Optional(Type.Boolean({ description: 'a boolean' })),
  ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM text' })),
  caFile: Type.Optional(Path('a path to a PEM file of CA certificates')),
  caPath: Type.Optional(Path('a path to a folder of PEM CA certificates')),
  certFile: Type.Optional(Path('a path to a PEM client certificate')),
  keyFile: Type.Optional(Path('a path to the PEM private key of certFile')),
  tlsServerName: Type.Optional(Type.String({ minLength: 1, description: 'a host name in the agent\'s certificate, e.g. server.dc1.consul' })),
  rejectUnauthorized: Type.Optional(Type.Boolean({ description: 'a boolean' })),
  auth: Type.Optional(Type.String({ minLength: 1, description: 'user:password for HTTP basic auth' })),
  namespace: Type.Optional(Type.String({ minLength: 1, description: 'a Consul Enterprise namespace' })),
  partition: Type.Optional(Type.String({ minLength: 1, description: 'a Consul Enterprise admin partition' }))
}, {
  additionalProperties: false,
  description: 'an object { address?, token?, tokenFile?, secure?, ca?, caFile?, caPath?, certFile?, keyFile?, tlsServerName?, rejectUnauthorized?, auth?, namespace?, partition? }'
})

/** How to reach the Consul agent. Every field but `ca` also has a Consul CLI environment variable. */
export interface ConsulConnectionOptions {
  /** `host:port`, a URL or `unix:///path`. Env: CONSUL_HTTP_ADDR. Default `127.0.0.1:8500`. */
  address?: string
  /** ACL token, sent as `X-Consul-Token`. Env: CONSUL_HTTP_TOKEN. */
  token?: string
  /** File holding the ACL token, re-read when it changes. Env: CONSUL_HTTP_TOKEN_FILE. `token` wins, as in Consul's Go client. */
  tokenFile?: string
  /** Use HTTPS. Env: CONSUL_HTTP_SSL. Implied by an `https://` address. */
  secure?: boolean
  /** PEM CA bundle (contents, not a path); wins over caFile and caPath. */
  ca?: string
  /** PEM file of CA certificates, re-read when it changes. Env: CONSUL_CACERT. Wins over caPath, as in the CLI. */
  caFile?: string
  /** Folder of PEM CA certificates, re-read when it changes. Env: CONSUL_CAPATH. */
  caPath?: string
  /** Client certificate for mutual TLS, re-read when it changes. Env: CONSUL_CLIENT_CERT. */
  certFile?: string
  /** Its private key. Env: CONSUL_CLIENT_KEY. */
  keyFile?: string
  /** The name to check the agent's certificate against (and send as SNI). Env: CONSUL_TLS_SERVER_NAME. */
  tlsServerName?: string
  /** Verify the agent's certificate. Env: CONSUL_HTTP_SSL_VERIFY. Default true. */
  rejectUnauthorized?: boolean
  /** HTTP basic auth, `user:password`; never logged. Env: CONSUL_HTTP_AUTH. */
  auth?: string
  /** Consul Enterprise namespace, sent as `?ns=`. Env: CONSUL_NAMESPACE. Untested here (no Enterprise agent). */
  namespace?: string
  /** Consul Enterprise admin partition, sent as `?partition=`. Env: CONSUL_PARTITION. Untested here. */
  partition?: string
}

/** Where each setting came from, as the user wrote it: what an error tells them to fix. */
export interface ConnectionNames {
  address: string
  secure: string
  ca: string
  cert: string
  key: string
  serverName: string
}

export interface ResolvedConnection {
  /** What requests are addressed to: `http(s)://host:port`, or `http(s)://localhost` over a socket. */
  origin: string
  /** What messages show: the origin, or `unix:///path`. */
  address: string
  /** The unix socket to connect to instead of host:port. */
  socketPath: string | undefined
  host: string
  port: number
  secure: boolean
  /** A token given as a string (option or CONSUL_HTTP_TOKEN). */
  token: string | undefined
  /** A token file, read by the transport and re-read when it changes; only when no string token is set. */
  tokenFile: string | undefined
  /** Inline PEM CA. */
  ca: string | undefined
  caFile: string | undefined
  caPath: string | undefined
  certFile: string | undefined
  keyFile: string | undefined
  serverName: string | undefined
  rejectUnauthorized: boolean
  /** `user:password`; a secret like the token: only ever sent in the Authorization header. */
  auth: string | undefined
  namespace: string | undefined
  partition: string | undefined
  names: ConnectionNames
}

/** The Authorization header for `user:password`; without a colon it is a user with an empty password, as in Consul's Go client. */
export function basicAuthorization (auth: string): string {
  return `Basic ${Buffer.from(auth.includes(':') ? auth : `${auth}:`).toString('base64')}`
}

function envBool (value: string | undefined, name: string): boolean | undefined {
  if (value === undefined || value === '') return undefined
  if (/^(1|true|yes|on)$/i.test(value)) return true
  if (/^(0|false|no|off)$/i.test(value)) return false
  throw new InvalidOptionError(name, 'a boolean (true/false/1/0)')
}

/** An option, else its CLI variable (unset and empty are the same), with the name the value came from. */
function pick (option: string | undefined, optionName: string, env: NodeJS.ProcessEnv, envName: string): [string | undefined, string] {
  if (option !== undefined) return [option, `consul.${optionName}`]
  const value = env[envName]
  return value === undefined || value === '' ? [undefined, `${envName} (or consul.${optionName})`] : [value, envName]
}

/**
 * Explicit options first, then Consul's own CLI variables, then the agent's defaults: the same
 * precedence as Consul's Go client, so an app behaves like `consul` on the same shell. Pure: files are
 * read by the transport (credentials.ts), which also re-reads them when they change.
 */
export function resolveConnection (opts: ConsulConnectionOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedConnection {
  const [rawAddress, addressName] = pick(opts.address, 'address', env, 'CONSUL_HTTP_ADDR')
  const raw = (rawAddress ?? '127.0.0.1:8500').trim()
  const field = addressName.split(' ')[0]!
  const secureFlag = opts.secure ?? envBool(env.CONSUL_HTTP_SSL, 'CONSUL_HTTP_SSL')

  let url: URL
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `${secureFlag ? 'https' : 'http'}://${raw}`)
  } catch {
    throw new InvalidOptionError(field, `host:port, an http(s) URL or unix:///path, got "${raw}"`)
  }
  let socketPath: string | undefined
  if (url.protocol === 'unix:') {
    // unix:///path: the Go client talks HTTP over the socket (HTTPS with CONSUL_HTTP_SSL), and so do we.
    if (url.host !== '' || url.pathname.length <= 1) throw new InvalidOptionError(field, `unix:///absolute/path/to/socket, got "${raw}"`)
    socketPath = decodeURIComponent(url.pathname)
  } else if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidOptionError(field, `an http(s) or unix:// address, got "${url.protocol}"`)
  } else if (url.username || url.password || (url.pathname !== '/' && url.pathname !== '')) {
    throw new InvalidOptionError(field, 'host:port without a path or credentials (basic auth goes in CONSUL_HTTP_AUTH or consul.auth)')
  }
  const secure = url.protocol === 'https:' || secureFlag === true
  const scheme = secure ? 'https' : 'http'
  const port = socketPath !== undefined ? 0 : url.port ? Number(url.port) : (secure ? 8501 : 8500)
  const host = socketPath !== undefined ? 'localhost' : url.hostname
  const origin = socketPath !== undefined ? `${scheme}://localhost` : `${scheme}://${host}:${port}`

  let token = opts.token
  let tokenFile: string | undefined
  if (token === undefined && opts.tokenFile !== undefined) tokenFile = opts.tokenFile
  else if (token === undefined && env.CONSUL_HTTP_TOKEN) token = env.CONSUL_HTTP_TOKEN
  else if (token === undefined && env.CONSUL_HTTP_TOKEN_FILE) tokenFile = env.CONSUL_HTTP_TOKEN_FILE
  if (token === '') token = undefined

  const [caFile, caFileName] = pick(opts.caFile, 'caFile', env, 'CONSUL_CACERT')
  const [caPath, caPathName] = pick(opts.caPath, 'caPath', env, 'CONSUL_CAPATH')
  const [certFile, certName] = pick(opts.certFile, 'certFile', env, 'CONSUL_CLIENT_CERT')
  const [keyFile, keyName] = pick(opts.keyFile, 'keyFile', env, 'CONSUL_CLIENT_KEY')
  const [serverName, serverNameName] = pick(opts.tlsServerName, 'tlsServerName', env, 'CONSUL_TLS_SERVER_NAME')
  if ((certFile === undefined) !== (keyFile === undefined)) {
    // Name the missing one the way the present one was given: as an option, or as a variable.
    const given = certFile === undefined ? keyName : certName
    const [option, variable] = certFile === undefined ? ['consul.certFile', 'CONSUL_CLIENT_CERT'] : ['consul.keyFile', 'CONSUL_CLIENT_KEY']
    throw new InvalidOptionError(given.startsWith('consul.') ? option : variable, `set together with ${given}: a client certificate needs its key`)
  }
  const caName = opts.ca !== undefined ? 'consul.ca' : caFile !== undefined ? caFileName : caPath !== undefined ? caPathName : 'CONSUL_CACERT or CONSUL_CAPATH (or consul.caFile)'

  return {
    origin,
    address: socketPath !== undefined ? `unix://${socketPath}` : origin,
    socketPath,
    host: host.replace(/^\[|\]$/g, ''),
    port,
    secure,
    token,
    tokenFile,
    ca: opts.ca,
    caFile,
    caPath,
    certFile,
    keyFile,
    serverName,
    rejectUnauthorized: opts.rejectUnauthorized ?? envBool(env.CONSUL_HTTP_SSL_VERIFY, 'CONSUL_HTTP_SSL_VERIFY') ?? true,
    auth: pick(opts.auth, 'auth', env, 'CONSUL_HTTP_AUTH')[0],
    namespace: pick(opts.namespace, 'namespace', env, 'CONSUL_NAMESPACE')[0],
    partition: pick(opts.partition, 'partition', env, 'CONSUL_PARTITION')[0],
    names: { address: field, secure: opts.secure !== undefined ? 'consul.secure' : 'CONSUL_HTTP_SSL', ca: caName, cert: certName, key: keyName, serverName: serverNameName }
  }
}
