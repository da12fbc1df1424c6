import type { ConnectionOptions } from 'node:tls'
import { Agent, type Dispatcher } from 'undici'
import { basicAuthorization, type ResolvedConnection } from './connection.js'
import { CredentialFiles, type Credentials } from './credentials.js'
import { isTlsCode, probeTlsAlert, tlsFailure } from './tls-failure.js'
import { AclDeniedError, BadResponseError, ConsulHttpError, TlsRequiredError, UnreachableError } from '../errors.js'

export interface ConsulRequest {
  method?: 'GET' | 'PUT' | 'POST' | 'DELETE'
  /** Path under the origin, e.g. `/v1/agent/service/register`. */
  path: string
  query?: Record<string, string | number | boolean | undefined>
  body?: unknown
  /** Milliseconds until the headers must have arrived; blocking queries pass wait + jitter + margin. */
  timeout?: number
  signal?: AbortSignal
}

export interface ConsulResponse {
  status: number
  /** X-Consul-Index, when present. */
  index: number | undefined
  /** X-Consul-KnownLeader === 'true' (undefined when absent). */
  knownLeader: boolean | undefined
  /** X-Consul-ContentHash: the blocking token of agent endpoints, which have no index. */
  contentHash: string | undefined
  text: string
}

export interface ConsulHttpOptions {
  connection: ResolvedConnection
  /** An undici dispatcher to send through; we create (and later close) our own when absent. */
  dispatcher?: Dispatcher
  /** Default per-request timeout in ms. */
  timeout?: number
  /** Largest response body we accept, in bytes. Protects against a misbehaving endpoint. */
  maxResponseSize?: number
  /** Least time between two looks for rotated token, CA and certificate files, in ms. Default 2000. */
  recheckMs?: number
}

/** How undici reports a connection the agent closed, which under TLS 1.3 may hide the agent's alert. */
const SOCKET_CLOSED = new Set<string | undefined>(['UND_ERR_SOCKET', 'ECONNRESET'])

/**
 * The few Consul endpoints the `consul` npm client gets wrong or lacks (Weights, EnableTagOverride,
 * ?replace-existing-checks, TTL check/update, blocking queries with our own index rules) go through
 * this thin undici wrapper. It owns the secrets: the token is sent only in `X-Consul-Token` and basic
 * auth only in `Authorization`; neither appears in a URL, a log line or an error message. It follows
 * rotated token, CA and certificate files (credentials.ts): a changed TLS file gets a new undici Agent
 * for the next request, and the old one closes once its requests (a blocking query, say) are done.
 */
export class ConsulHttp {
  readonly origin: string
  /** Where the agent is, for messages: the origin, or `unix:///path`. */
  readonly address: string
  readonly #conn: ResolvedConnection
  readonly #files: CredentialFiles
  readonly #authorization: string | undefined
  readonly #scope: Record<string, string>
  #dispatcher: Dispatcher
  #version = 0
  readonly #retired = new Set<Dispatcher>()
  readonly #owned: boolean
  readonly #timeout: number
  readonly #maxResponseSize: number
  #closed = false

  constructor (opts: ConsulHttpOptions) {
    this.#conn = opts.connection
    this.origin = opts.connection.origin
    this.address = opts.connection.address
    this.#files = new CredentialFiles(opts.connection, { recheckMs: opts.recheckMs })
    this.#authorization = opts.connection.auth === undefined ? undefined : basicAuthorization(opts.connection.auth)
    this.#scope = {}
    if (opts.connection.namespace !== undefined) this.#scope.ns = opts.connection.namespace
    if (opts.connection.partition !== undefined) this.#scope.partition = opts.connection.partition
    this.#timeout = opts.timeout ?? 10_000
    this.#owned = opts.dispatcher === undefined
    this.#maxResponseSize = opts.maxResponseSize ?? 32 * 1024 * 1024
    this.#dispatcher = opts.dispatcher ?? this.#agent(this.#files.current)
  }

  get hasToken (): boolean {
    return this.#files.current.token !== undefined
  }

  /** The token and TLS material as last read: for the `consul` npm client, which cannot follow rotation. */
  get credentials (): Credentials {
    return this.#files.current
  }

  /** What tls.connect gets: the CA, our certificate, the name to check, whether to check. */
  tlsOptions (creds: Credentials): ConnectionOptions {
    return {
      ca: creds.ca,
      cert: creds.cert,
      key: creds.key,
      servername: this.#conn.serverName,
      rejectUnauthorized: this.#conn.rejectUnauthorized
    }
  }

  #agent (creds: Credentials): Dispatcher {
    return new Agent({
      connect: {
        ...(this.#conn.secure ? this.tlsOptions(creds) : {}),
        ...(this.#conn.socketPath !== undefined ? { socketPath: this.#conn.socketPath } : {}),
        timeout: 5_000
      },
      keepAliveTimeout: 30_000,
      maxResponseSize: this.#maxResponseSize
    })
  }

  /** The dispatcher for the next request: a new Agent when a TLS file changed since the last one. */
  #current (): { dispatcher: Dispatcher, creds: Credentials } {
    const creds = this.#files.refresh()
    if (this.#owned && creds.version !== this.#version && this.#conn.secure) {
      const old = this.#dispatcher
      this.#retired.add(old)
      // close() lets in-flight requests finish on the old certificate; new ones use the new Agent.
      old.close().finally(() => this.#retired.delete(old)).catch(/* c8 ignore next -- close() does not reject once requested */ () => {})
      this.#dispatcher = this.#agent(creds)
    }
    this.#version = creds.version
    return { dispatcher: this.#dispatcher, creds }
  }

  /** Sends one request. Network failures throw FST_REG_CONSUL_UNREACHABLE (or a FST_REG_CONSUL_TLS_* code); any HTTP status is returned. */
  async send (req: ConsulRequest): Promise<ConsulResponse> {
    const { dispatcher, creds } = this.#current()
    const headers: Record<string, string> = {}
    if (creds.token !== undefined) headers['x-consul-token'] = creds.token
    if (this.#authorization !== undefined) headers.authorization = this.#authorization
    let body: string | undefined
    if (req.body !== undefined) {
      body = JSON.stringify(req.body)
      headers['content-type'] = 'application/json'
    }
    const query: Record<string, string> = { ...this.#scope }
    for (const [k, v] of Object.entries(req.query ?? {})) {
      if (v === undefined || v === false) continue
      query[k] = v === true ? '' : String(v)
    }
    const timeout = req.timeout ?? this.#timeout
    let res: Dispatcher.ResponseData
    let text: string
    try {
      res = await dispatcher.request({
        origin: this.origin,
        method: req.method ?? 'GET',
        path: req.path + toQuery(query),
        headers,
        body,
        signal: req.signal,
        headersTimeout: timeout,
        bodyTimeout: timeout
      })
      text = await res.body.text()
    } catch (err) {
      if (req.signal?.aborted) throw err
      throw await this.#failure(err as Error & { code?: string }, req, creds)
    }
    // Go's TLS listener answers a plain-HTTP request with this 400: name the setting, not the status.
    if (res.statusCode === 400 && !this.#conn.secure && text.startsWith('Client sent an HTTP request to an HTTPS server')) {
      throw new TlsRequiredError(this.address, this.#conn.names.secure)
    }
    const index = Number(res.headers['x-consul-index'])
    const leader = res.headers['x-consul-knownleader']
    const hash = res.headers['x-consul-contenthash']
    return {
      status: res.statusCode,
      index: Number.isFinite(index) ? index : undefined,
      knownLeader: leader === undefined ? undefined : leader === 'true',
      contentHash: typeof hash === 'string' ? hash : undefined,
      text
    }
  }

  async #failure (e: Error & { code?: string }, req: ConsulRequest, creds: Credentials): Promise<Error> {
    // The agent answered, just too much: a malformed reply, not an outage.
    if (e.code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') return new BadResponseError(`${req.method ?? 'GET'} ${req.path}`, `larger than ${this.#maxResponseSize} bytes`)
    let code = e.code
    if (this.#conn.secure && SOCKET_CLOSED.has(code)) {
      // TLS 1.3: the agent rejects our certificate after our handshake is done, and undici loses the alert.
      code = await probeTlsAlert(this.#conn, this.tlsOptions(creds)) ?? code
    }
    if (isTlsCode(code)) {
      // Perhaps the files were just rotated: look at them again before the next attempt, whatever the time.
      this.#files.invalidate()
      const failure = tlsFailure(code!, e.message, this.#conn, creds)
      failure.cause = e
      return failure
    }
    /* c8 ignore next -- undici's errors all carry a code; the message covers anything foreign */
    const unreachable = new UnreachableError(this.address, code ?? e.message)
    unreachable.cause = e
    return unreachable
  }

  /**
   * Like send(), but a non-2xx answer becomes a coded error: 403 → FST_REG_CONSUL_ACL_DENIED, others →
   * FST_REG_CONSUL_HTTP. The description names the endpoint without its query string.
   */
  async ok (req: ConsulRequest): Promise<ConsulResponse> {
    const res = await this.send(req)
    if (res.status >= 200 && res.status < 300) return res
    throw httpError(`${req.method ?? 'GET'} ${req.path}`, res)
  }

  async close (): Promise<void> {
    if (this.#closed || !this.#owned) return
    this.#closed = true
    // A retired Agent may still hold a blocking query for minutes: end it rather than wait.
    await Promise.all([this.#dispatcher.close(), ...[...this.#retired].map((d) => d.destroy())])
  }
}

export function httpError (what: string, res: ConsulResponse): Error {
  const detail = res.text.trim().slice(0, 512)
  if (res.status === 403) return new AclDeniedError(what, detail)
  return new ConsulHttpError(what, res.status, detail)
}

function toQuery (query: Record<string, string>): string {
  const parts = Object.entries(query).map(([k, v]) => v === '' ? encodeURIComponent(k) : `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
  return parts.length > 0 ? `?${parts.join('&')}` : ''
}
