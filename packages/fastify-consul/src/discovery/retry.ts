import { Readable, type Duplex } from 'node:stream'
import { errors, type Dispatcher } from 'undici'
import type { Instance } from './instance.js'
import { TokenBucket } from '../util/token-bucket.js'

/** Methods that RFC 9110 defines as idempotent, minus TRACE (never worth a second attempt). */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])

/** Failures that happen before the upstream could have answered: safe to try elsewhere. */
const CONNECTION_ERRORS: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET',
  // The upstream's pool was closed under us because the instance left the set.
  'UND_ERR_CLOSED', 'UND_ERR_DESTROYED'
])

/** Failures to open a connection at all: the instance is down or unreachable, so it gets ejected. */
const CONNECT_FAILURES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'UND_ERR_CONNECT_TIMEOUT'
])

function codeOf (err: Error): string | undefined {
  return (err as Error & { code?: string }).code
}

/**
 * The connection was never established, so not a byte of the request left: safe to send any method
 * elsewhere (Envoy's `connect-failure`). ETIMEDOUT is left out: Node also uses it for sockets that died
 * mid-request.
 */
const NEVER_SENT: ReadonlySet<string> = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'UND_ERR_CONNECT_TIMEOUT'])

export function wasNeverSent (err: Error): boolean {
  return NEVER_SENT.has(codeOf(err) ?? '')
}

export function isConnectionError (err: Error): boolean {
  return CONNECTION_ERRORS.has(codeOf(err) ?? '')
}

export function isConnectFailure (err: Error): boolean {
  return CONNECT_FAILURES.has(codeOf(err) ?? '')
}

/** An explicit `idempotent` wins (say, a POST carrying an idempotency key); otherwise the method decides. */
export function isIdempotent (opts: Pick<Dispatcher.DispatchOptions, 'method' | 'idempotent'>): boolean {
  return opts.idempotent ?? IDEMPOTENT_METHODS.has(opts.method)
}

/**
 * Whether the body can be sent a second time. Strings and bytes always can; a stream only if nothing
 * read it yet (a connection refused before the first byte). Iterables and FormData could have been
 * partly consumed without a way to tell, so they are never replayed.
 */
export function isReplayableBody (body: unknown): boolean {
  if (body === null || body === undefined || typeof body === 'string') return true
  if (body instanceof Uint8Array || body instanceof ArrayBuffer || body instanceof Blob) return true
  const stream = body as { pipe?: unknown, destroyed?: boolean }
  if (typeof stream.pipe === 'function') return stream.destroyed !== true && !Readable.isDisturbed(body as Readable)
  return false
}

export interface RetryBudgetOptions {
  /** Retries allowed per request sent, as a fraction: 0.2 means retries add at most 20 % load. */
  ratio: number
  /** Retries allowed per second regardless of traffic, so a quiet caller can still retry. */
  minPerSecond: number
  /** The most retries that can be saved up. */
  burst: number
}

export const RETRY_BUDGET_DEFAULTS: Readonly<RetryBudgetOptions> = Object.freeze({ ratio: 0.2, minPerSecond: 10, burst: 100 })

/**
 * Finagle's retry budget as a token bucket: every request deposits `ratio` tokens, time deposits
 * `minPerSecond`, a retry spends one. When an outage makes every request fail, retries stop
 * multiplying the load once the bucket is empty.
 */
export class RetryBudget {
  readonly #ratio: number
  readonly #bucket: TokenBucket

  constructor (opts: RetryBudgetOptions, now?: () => number) {
    this.#ratio = opts.ratio
    this.#bucket = new TokenBucket({ perSecond: opts.minPerSecond, burst: opts.burst, now })
  }

  get available (): number {
    return this.#bucket.tokens
  }

  onRequest (): void {
    this.#bucket.deposit(this.#ratio)
  }

  tryRetry (): boolean {
    return this.#bucket.tryTake()
  }
}

/** The undici handler protocol that Client and Pool speak natively (and that request() and fetch() use). */
export interface LegacyHandler {
  onConnect (abort: (err?: Error) => void, context?: unknown): void
  onError (err: Error): void
  onHeaders? (statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean
  onData? (chunk: Buffer): boolean
  onComplete? (trailers: string[] | Buffer[] | null): void
  onUpgrade? (statusCode: number, headers: Buffer[] | string[] | null, socket: Duplex): void
  onResponseStarted? (): void
  onBodySent? (chunk: unknown, total?: number): void
  onRequestSent? (): void
}

/** What a RetryingHandler needs from the dispatcher that owns the instances. */
export interface RetryRoute {
  readonly maxRetries: number
  readonly budget: RetryBudget
  /** An instance whose origin is not in `tried`, by the balancer; undefined when none is left. */
  choose (tried: ReadonlySet<string>): Instance | undefined
  originOf (instance: Instance): string
  send (origin: string, opts: Dispatcher.DispatchOptions, handler: LegacyHandler): void
  /** Every failed attempt, retried or not (ejection decides on it). */
  failed (instance: Instance, err: Error): void
  retrying (next: Instance, err: Error): void
  denied (err: Error): void
  noInstance (): Error
}

/**
 * The go-kit "retry": wraps the caller's handler for the life of one request and sends it again, to
 * an instance it has not tried yet, when the failure happened before any response and the request
 * can be repeated. The caller sees one onConnect, one response or one error, whatever the attempts.
 */
export class RetryingHandler implements LegacyHandler {
  readonly #route: RetryRoute
  readonly #opts: Dispatcher.DispatchOptions
  readonly #handler: LegacyHandler
  readonly #tried = new Set<string>()
  readonly #idempotent: boolean
  #instance: Instance | undefined
  #attempts = 0
  #abortAttempt: ((err?: Error) => void) | undefined
  #aborted: Error | undefined
  #connected = false
  #responded = false

  constructor (route: RetryRoute, opts: Dispatcher.DispatchOptions, handler: LegacyHandler) {
    this.#route = route
    this.#opts = opts
    this.#handler = handler
    this.#idempotent = isIdempotent(opts)
  }

  start (): void {
    this.#route.budget.onRequest()
    const first = this.#route.choose(this.#tried)
    if (first === undefined) this.#handler.onError(this.#route.noInstance())
    else this.#send(first)
  }

  #send (instance: Instance): void {
    if (this.#aborted !== undefined) {
      this.#handler.onError(this.#aborted)
      return
    }
    const origin = this.#route.originOf(instance)
    this.#tried.add(origin)
    this.#instance = instance
    this.#attempts++
    this.#route.send(origin, this.#opts, this)
  }

  // Handed to the caller once; always aborts whichever attempt is current, or the next one.
  readonly #abort = (reason?: Error): void => {
    if (this.#aborted !== undefined) return
    this.#aborted = reason ?? new errors.RequestAbortedError()
    this.#abortAttempt?.(this.#aborted)
  }

  onConnect (abort: (err?: Error) => void, context?: unknown): void {
    this.#abortAttempt = abort
    if (this.#aborted !== undefined) {
      abort(this.#aborted)
      return
    }
    if (this.#connected) return
    this.#connected = true
    this.#handler.onConnect(this.#abort, context)
  }

  onResponseStarted (): void {
    this.#responded = true
    this.#handler.onResponseStarted?.()
  }

  onHeaders (statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    this.#responded = true
    return this.#handler.onHeaders!(statusCode, headers, resume, statusText)
  }

  onData (chunk: Buffer): boolean {
    return this.#handler.onData!(chunk)
  }

  onComplete (trailers: string[] | Buffer[] | null): void {
    this.#handler.onComplete!(trailers)
  }

  onUpgrade (statusCode: number, headers: Buffer[] | string[] | null, socket: Duplex): void {
    this.#responded = true
    this.#handler.onUpgrade!(statusCode, headers, socket)
  }

  onBodySent (chunk: unknown, total?: number): void {
    this.#handler.onBodySent?.(chunk, total)
  }

  onRequestSent (): void {
    this.#handler.onRequestSent?.()
  }

  onError (err: Error): void {
    this.#abortAttempt = undefined
    const route = this.#route
    route.failed(this.#instance!, err)
    // Idempotent requests may be retried after any connection failure; others only when nothing was sent.
    const eligible = this.#aborted === undefined && !this.#responded && (this.#idempotent ? isConnectionError(err) : wasNeverSent(err)) &&
      this.#attempts <= route.maxRetries && isReplayableBody(this.#opts.body)
    const next = eligible ? route.choose(this.#tried) : undefined
    if (next === undefined) {
      this.#handler.onError(err)
    } else if (!route.budget.tryRetry()) {
      route.denied(err)
      this.#handler.onError(err)
    } else {
      route.retrying(next, err)
      // Out of undici's error path before dispatching again.
      queueMicrotask(() => this.#send(next))
    }
  }
}
