import { Readable, type Duplex } from 'node:stream'
import { errors, type Dispatcher } from 'undici'
import type { Instance } from '../watch/instance.js'
import { classifyFailure, type FailureKind } from './failure.js'
import type { UpstreamLoad } from '../lb/upstream-load.js'
import { TokenBucket } from '../../util/token-bucket.js'
import { UpstreamUnusableError } from '../../errors.js'

/** Methods that RFC 9110 defines as idempotent, minus TRACE (never worth a second attempt). */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])

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

/** Why a request goes to another instance. */
export type RetryCause = 'error' | 'timeout' | 'status'

/**
 * How a request ended, as the caller saw it: an answer below 500 (`success`, upgrades included) or from
 * 500 up (`server_error`), no answer at all (`failed`: every attempt failed, or the retries ran out),
 * no instance to send it to (`no_instance`), or the caller gave up (`aborted`). A fixed set, so it can be
 * a metric label.
 */
export type RequestOutcome = 'success' | 'server_error' | 'failed' | 'no_instance' | 'aborted'

/** What a RetryingHandler needs from the dispatcher that owns the instances. */
export interface RetryRoute {
  readonly maxRetries: number
  readonly budget: RetryBudget
  /** Answers that send an idempotent request to another instance instead of to the caller. */
  readonly retryOn: ReadonlySet<number>
  /** Per-try timeout of idempotent requests, in ms; 0 for none. */
  readonly perTryTimeout: number
  /** Milliseconds clock the loads are stamped with. */
  now (): number
  /** An instance whose origin is not in `tried`, by the balancer; undefined when none is left. */
  choose (tried: ReadonlySet<string>): Instance | undefined
  originOf (instance: Instance): string
  /** The instance's live load, which each attempt updates as it starts, answers and ends. */
  loadOf (instance: Instance): UpstreamLoad
  send (origin: string, opts: Dispatcher.DispatchOptions, handler: LegacyHandler): void
  /** The instance answered below 500. */
  succeeded (instance: Instance): void
  /** An attempt failed in a way that counts against the instance (outlier detection decides on it). */
  failed (instance: Instance, kind: FailureKind, err?: Error): void
  /** An attempt got no response headers within the per-try timeout (`failed` follows). */
  timedOut (instance: Instance): void
  retrying (next: Instance, cause: RetryCause): void
  /**
   * The request is over for the caller: once per request, with the instance of its last attempt
   * (undefined when there was none), how long it took since dispatch (ms) and how many retries it used.
   */
  ended (instance: Instance | undefined, outcome: RequestOutcome, durationMs: number, retries: number): void
  /** A retry that method, error and instances allowed, refused by the budget (the error's code, or the status). */
  denied (reason: string | undefined): void
  noInstance (): Error
}

/** One attempt of a request on one instance. */
interface Attempt {
  readonly instance: Instance
  readonly load: UpstreamLoad
  readonly startedAt: number
  /** undici's abort for this attempt, once it is on a connection. */
  abort: ((err?: Error) => void) | undefined
  timer: NodeJS.Timeout | undefined
  /** Why its outcome stopped mattering (its per-try timeout); it is aborted as soon as it can be. */
  detached: Error | undefined
  /** Set while a `retryOn` answer is drained: the instance the request goes to next. */
  next: Instance | undefined
  /** Its timer is cleared and its load ended: see RetryingHandler.#settle. */
  settled: boolean
}

/**
 * The go-kit "retry": wraps the caller's handler for the life of one request and sends it again, to
 * an instance it has not tried yet, when an attempt failed before any response reached the caller and
 * the request can be repeated: after a connection failure, after the per-try timeout (idempotent
 * requests), or on a `retryOn` status (idempotent requests; that answer's body is drained and
 * dropped). The caller sees one onConnect, and one response or one error, whatever the attempts.
 */
export class RetryingHandler {
  readonly #route: RetryRoute
  readonly #opts: Dispatcher.DispatchOptions
  readonly #handler: LegacyHandler
  readonly #tried = new Set<string>()
  readonly #idempotent: boolean
  #current: Attempt | undefined
  /** The instance of the latest attempt, for `ended`. */
  #last: Instance | undefined
  #attempts = 0
  #startedAt = 0
  #status = 0
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
    this.#startedAt = this.#route.now()
    this.#route.budget.onRequest()
    const first = this.#route.choose(this.#tried)
    if (first === undefined) this.#fail(this.#route.noInstance(), 'no_instance')
    else this.#send(first)
  }

  /** Tells the route once how the request ended; the caller's own callback follows. */
  #end (outcome: RequestOutcome): void {
    const attempts = this.#attempts
    this.#route.ended(this.#last, outcome, this.#route.now() - this.#startedAt, attempts > 0 ? attempts - 1 : 0)
  }

  #fail (err: Error, outcome: RequestOutcome): void {
    this.#end(outcome)
    this.#handler.onError(err)
  }

  #send (instance: Instance): void {
    if (this.#aborted !== undefined) {
      this.#fail(this.#aborted, 'aborted')
      return
    }
    const route = this.#route
    const origin = route.originOf(instance)
    this.#tried.add(origin)
    this.#attempts++
    this.#last = instance
    const a: Attempt = { instance, load: route.loadOf(instance), startedAt: route.now(), abort: undefined, timer: undefined, detached: undefined, next: undefined, settled: false }
    a.load.begin(a.startedAt)
    this.#current = a
    if (route.perTryTimeout > 0 && this.#idempotent) {
      a.timer = setTimeout(() => this.#timeout(a), route.perTryTimeout)
      a.timer.unref()
    }
    try {
      route.send(origin, this.#opts, this.#handlerFor(a))
    } catch (err) {
      // Building the instance's pool or handing it the request threw. This runs inside dispatch(), a
      // microtask or a timer: a throw escaping from the last two kills the process. It is this
      // attempt's failure instead, counted against the instance and retried elsewhere.
      this.#onError(a, Object.assign(new UpstreamUnusableError(origin, String((err as Error).message)), { cause: err }))
    }
  }

  /**
   * Ends one attempt's bookkeeping, once: its per-try timer and its share of the instance's load.
   * Every way an attempt ends comes through here, so a timer never fires for an answered request and
   * an instance's outstanding count never keeps a finished attempt. False when it was settled already.
   */
  #settle (a: Attempt): boolean {
    if (a.settled) return false
    a.settled = true
    clearTimeout(a.timer)
    a.load.end(a.startedAt)
    return true
  }

  /** The handler undici drives for one attempt; everything the caller sees goes through this class. */
  #handlerFor (a: Attempt): LegacyHandler {
    return {
      onConnect: (abort, context) => this.#onConnect(a, abort, context),
      onError: (err) => this.#onError(a, err),
      // Passed on with the headers instead: a drained `retryOn` answer must not start the caller's response.
      onResponseStarted: () => {},
      onHeaders: (status, headers, resume, text) => this.#onHeaders(a, status, headers, resume, text),
      // A drained answer's body goes nowhere; returning true keeps reading it to the end.
      onData: (chunk) => a.next !== undefined || this.#handler.onData!(chunk),
      onComplete: (trailers) => this.#onComplete(a, trailers),
      onUpgrade: (status, headers, socket) => this.#onUpgrade(a, status, headers, socket),
      onBodySent: (chunk, total) => this.#handler.onBodySent?.(chunk, total),
      onRequestSent: () => this.#handler.onRequestSent?.()
    }
  }

  // Handed to the caller once; always aborts whichever attempt is current, or the next one.
  readonly #abort = (reason?: Error): void => {
    if (this.#aborted !== undefined) return
    this.#aborted = reason ?? new errors.RequestAbortedError()
    this.#current?.abort?.(this.#aborted)
  }

  #onConnect (a: Attempt, abort: (err?: Error) => void, context?: unknown): void {
    a.abort = abort
    const reason = a.detached ?? this.#aborted
    if (reason !== undefined) {
      abort(reason)
      return
    }
    if (this.#connected) return
    this.#connected = true
    this.#handler.onConnect(this.#abort, context)
  }

  #onHeaders (a: Attempt, status: number, headers: Buffer[], resume: () => void, text: string): boolean {
    clearTimeout(a.timer)
    const route = this.#route
    const now = route.now()
    a.load.observe(now - a.startedAt, now)
    // A 5xx to a request that is not idempotent says nothing either way: it may be the request's fault.
    if (status < 500) route.succeeded(a.instance)
    else if (this.#idempotent) route.failed(a.instance, 'status')
    if (this.#idempotent && route.retryOn.has(status) && this.#mayRetry()) {
      const next = route.choose(this.#tried)
      if (next !== undefined && this.#spend(`status ${status}`)) {
        route.retrying(next, 'status')
        a.next = next
        return true
      }
    }
    this.#responded = true
    this.#status = status
    this.#handler.onResponseStarted?.()
    return this.#handler.onHeaders!(status, headers, resume, text)
  }

  #onComplete (a: Attempt, trailers: string[] | Buffer[] | null): void {
    this.#settle(a)
    const next = a.next
    if (next === undefined) {
      this.#end(this.#status >= 500 ? 'server_error' : 'success')
      this.#handler.onComplete!(trailers)
      return
    }
    this.#current = undefined
    queueMicrotask(() => this.#send(next))
  }

  #onUpgrade (a: Attempt, status: number, headers: Buffer[] | string[] | null, socket: Duplex): void {
    this.#settle(a)
    this.#route.succeeded(a.instance)
    this.#responded = true
    this.#end('success')
    this.#handler.onResponseStarted?.()
    this.#handler.onUpgrade!(status, headers, socket)
  }

  #onError (a: Attempt, err: Error): void {
    // A second error for one attempt: a pool that reported a failure and then threw as well.
    if (!this.#settle(a)) return
    // An attempt detached by its per-try timeout: the request has moved on already.
    if (a !== this.#current) return
    this.#current = undefined
    const next = a.next
    if (next !== undefined) {
      // The connection died while a `retryOn` answer was drained: the retry was decided and paid for.
      queueMicrotask(() => this.#send(next))
      return
    }
    const failure = classifyFailure(err)
    if (this.#aborted === undefined && failure.kind !== undefined) this.#route.failed(a.instance, failure.kind, err)
    // Idempotent requests may be retried after any connection failure; others only when nothing was sent.
    this.#retryOrFail(err, this.#idempotent ? failure.connection : failure.neverSent, 'error')
  }

  #timeout (a: Attempt): void {
    const route = this.#route
    const now = route.now()
    // The time it waited is a latency sample: a frozen replica's estimate jumps to the timeout at once.
    a.load.observe(now - a.startedAt, now)
    route.timedOut(a.instance)
    route.failed(a.instance, 'timeout')
    const err = new errors.HeadersTimeoutError(`no response headers within the per-try timeout (${route.perTryTimeout} ms)`)
    this.#current = undefined
    a.detached = err
    // Not on a connection yet (queued in the pool): onConnect aborts it when it gets one.
    a.abort?.(err)
    this.#retryOrFail(err, true, 'timeout')
  }

  #mayRetry (): boolean {
    return !this.#responded && this.#attempts <= this.#route.maxRetries && isReplayableBody(this.#opts.body)
  }

  #spend (reason: string | undefined): boolean {
    if (this.#route.budget.tryRetry()) return true
    this.#route.denied(reason)
    return false
  }

  #retryOrFail (err: Error, retryable: boolean, cause: RetryCause): void {
    if (this.#aborted !== undefined) {
      this.#fail(this.#aborted, 'aborted')
      return
    }
    const next = retryable && this.#mayRetry() ? this.#route.choose(this.#tried) : undefined
    if (next === undefined || !this.#spend((err as Error & { code?: string }).code)) {
      this.#fail(err, 'failed')
      return
    }
    this.#route.retrying(next, cause)
    // Out of undici's error path before dispatching again.
    queueMicrotask(() => this.#send(next))
  }
}
