import { Agent, type Dispatcher } from 'undici'
import type { ResolvedConnection } from './connection.js'
import { AclDeniedError, BadResponseError, ConsulHttpError, UnreachableError } from '../errors.js'

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
}

/**
 * The few Consul endpoints the `consul` npm client gets wrong or lacks (Weights, EnableTagOverride,
 * ?replace-existing-checks, TTL check/update, blocking queries with our own index rules) go through
 * this thin undici wrapper. It owns the token: it is sent only in `X-Consul-Token` and never appears in
 * a URL, a log line or an error message.
 */
export class ConsulHttp {
  readonly origin: string
  readonly #token: string | undefined
  readonly #dispatcher: Dispatcher
  readonly #owned: boolean
  readonly #timeout: number
  readonly #maxResponseSize: number
  #closed = false

  constructor (opts: ConsulHttpOptions) {
    this.origin = opts.connection.origin
    this.#token = opts.connection.token
    this.#timeout = opts.timeout ?? 10_000
    this.#owned = opts.dispatcher === undefined
    this.#maxResponseSize = opts.maxResponseSize ?? 32 * 1024 * 1024
    this.#dispatcher = opts.dispatcher ?? new Agent({
      connect: {
        ca: opts.connection.ca,
        rejectUnauthorized: opts.connection.rejectUnauthorized,
        timeout: 5_000
      },
      keepAliveTimeout: 30_000,
      maxResponseSize: this.#maxResponseSize
    })
  }

  get hasToken (): boolean {
    return this.#token !== undefined
  }

  /** Sends one request. Network failures throw FST_REG_CONSUL_UNREACHABLE; any HTTP status is returned. */
  async send (req: ConsulRequest): Promise<ConsulResponse> {
    const headers: Record<string, string> = {}
    if (this.#token !== undefined) headers['x-consul-token'] = this.#token
    let body: string | undefined
    if (req.body !== undefined) {
      body = JSON.stringify(req.body)
      headers['content-type'] = 'application/json'
    }
    const query: Record<string, string> = {}
    for (const [k, v] of Object.entries(req.query ?? {})) {
      if (v === undefined || v === false) continue
      query[k] = v === true ? '' : String(v)
    }
    const timeout = req.timeout ?? this.#timeout
    try {
      const res = await this.#dispatcher.request({
        origin: this.origin,
        method: req.method ?? 'GET',
        path: req.path + toQuery(query),
        headers,
        body,
        signal: req.signal,
        headersTimeout: timeout,
        bodyTimeout: timeout
      })
      const text = await res.body.text()
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
    } catch (err) {
      if (req.signal?.aborted) throw err
      const e = err as Error & { code?: string }
      // The agent answered, just too much: a malformed reply, not an outage.
      if (e.code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') throw new BadResponseError(`${req.method ?? 'GET'} ${req.path}`, `larger than ${this.#maxResponseSize} bytes`)
      /* c8 ignore next -- undici's errors all carry a code; the message covers anything foreign */
      const unreachable = new UnreachableError(this.origin, e.code ?? e.message)
      unreachable.cause = err
      throw unreachable
    }
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
    await this.#dispatcher.close()
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
