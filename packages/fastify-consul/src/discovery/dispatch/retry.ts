import type { Duplex } from 'node:stream'
import { errors, type Dispatcher } from 'undici'
import type { Instance } from '../watch/instance.js'
import { classifyFailure, type FailureKind } from './failure.js'
import type { UpstreamLoad } from '../lb/upstream-load.js'
import type { LegacyHandler } from './undici-handler.js'
import { isIdempotent, isReplayableBody, type RequestOutcome, type RetryPolicy } from './retry-policy.js'
import { UpstreamUnusableError } from '../../errors.js'

/** Why a request goes to another instance. */
export type RetryCause = 'error' | 'timeout' | 'status'

/** Where one attempt goes: the instance, its origin (what `tried` holds) and its live load. */
export interface Target {
  readonly instance: Instance
  readonly origin: string
  /** Each attempt updates it as it starts, answers and ends (least-request reads it). */
  readonly load: UpstreamLoad
}

/** What a RetryingHandler tells the dispatcher about its attempts: outlier detection, counters, events. */
export interface RetryReport {
  /** The instance answered below 500. */
  succeeded (instance: Instance): void
  /** An attempt ended, whatever its outcome (after `succeeded`, before or after `failed`). */
  settled (target: Target): void
  /** An attempt failed in a way that counts against the instance (outlier detection decides on it). */
  failed (instance: Instance, kind: FailureKind, err?: Error): void
  /**
   * An attempt got no response headers within the per-try timeout: a failure that ejects at once (the
   * caller chose the timeout as the line past which an instance is stalled), reported here, not by `failed`.
   */
  timedOut (instance: Instance): void
  retrying (next: Instance, cause: RetryCause): void
  /** A retry that method, error and instances allowed, refused by the budget (the error's code, or the status). */
  denied (reason: string | undefined): void
  /**
   * The request is over for the caller: once per request, with the instance of its last attempt
   * (undefined when there was none), how long it took since dispatch (ms) and how many retries it used.
   */
  ended (instance: Instance | undefined, outcome: RequestOutcome, durationMs: number, retries: number): void
}

/**
 * All a RetryingHandler needs from the dispatcher that owns the instances (go-kit's `Retry(max, timeout,
 * balancer)`): pick a target it has not tried, send an attempt there, report what happened.
 */
export interface RetryRoute {
  readonly policy: RetryPolicy
  /** A target whose origin is not in `tried`, by the balancer; undefined when none is left. */
  choose (tried: ReadonlySet<string>): Target | undefined
  send (target: Target, opts: Dispatcher.DispatchOptions, handler: LegacyHandler): void
  readonly report: RetryReport
}

/** One attempt of a request on one instance. */
interface Attempt extends Target {
  readonly startedAt: number
  /** undici's abort for this attempt, once it is on a connection. */
  abort: ((err?: Error) => void) | undefined
  timer: NodeJS.Timeout | undefined
  /** Why its outcome stopped mattering (its per-try timeout); it is aborted as soon as it can be. */
  detached: Error | undefined
  /** Set while a `retryOn` answer is drained: where the request goes next. */
  next: Target | undefined
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
  readonly #policy: RetryPolicy
  readonly #report: RetryReport
  readonly #opts: Dispatcher.DispatchOptions
  readonly #handler: LegacyHandler
  readonly #tried = new Set<string>()
  /** The instance IDs of its attempts, in order: how many were made, and who, for the error when it gives up. */
  readonly #path: string[] = []
  readonly #idempotent: boolean
  #current: Attempt | undefined
  /** The instance of the latest attempt, for `ended`. */
  #last: Instance | undefined
  #startedAt = 0
  #status = 0
  #aborted: Error | undefined
  #connected = false
  #responded = false

  constructor (route: RetryRoute, opts: Dispatcher.DispatchOptions, handler: LegacyHandler) {
    this.#route = route
    this.#policy = route.policy
    this.#report = route.report
    this.#opts = opts
    this.#handler = handler
    this.#idempotent = isIdempotent(opts)
  }

  start (): void {
    this.#startedAt = this.#policy.now()
    this.#policy.budget.onRequest()
    const first = this.#route.choose(this.#tried)
    if (first === undefined) this.#fail(this.#policy.noInstance(), 'no_instance')
    else this.#send(first)
  }

  /** Tells the route once how the request ended; the caller's own callback follows. */
  #end (outcome: RequestOutcome): void {
    const attempts = this.#path.length
    this.#report.ended(this.#last, outcome, this.#policy.now() - this.#startedAt, attempts > 0 ? attempts - 1 : 0)
  }

  #fail (err: Error, outcome: RequestOutcome): void {
    this.#end(outcome)
    // Given up before any answer: one coded error whatever the tries were, the last one's as its cause.
    // An error after the answer started (the body cut off) is the response stream's own, as undici's is.
    this.#handler.onError(outcome === 'failed' && !this.#responded ? this.#policy.gaveUp(err, this.#path) : err)
  }

  #send (target: Target): void {
    if (this.#aborted !== undefined) {
      this.#fail(this.#aborted, 'aborted')
      return
    }
    const policy = this.#policy
    const { instance, origin, load } = target
    this.#tried.add(origin)
    this.#path.push(instance.id)
    this.#last = instance
    const a: Attempt = { instance, origin, load, startedAt: policy.now(), abort: undefined, timer: undefined, detached: undefined, next: undefined, settled: false }
    a.load.begin(a.startedAt)
    this.#current = a
    if (policy.perTryTimeout > 0 && this.#idempotent) {
      a.timer = setTimeout(() => this.#timeout(a), policy.perTryTimeout)
      a.timer.unref()
    }
    try {
      this.#route.send(a, this.#opts, this.#handlerFor(a))
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
    this.#report.settled(a)
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
    const report = this.#report
    const now = this.#policy.now()
    a.load.observe(now - a.startedAt, now)
    // A 5xx to a request that is not idempotent says nothing either way: it may be the request's fault.
    if (status < 500) report.succeeded(a.instance)
    else if (this.#idempotent) report.failed(a.instance, 'status')
    if (this.#idempotent && this.#policy.retryOn.has(status) && this.#mayRetry()) {
      const next = this.#route.choose(this.#tried)
      if (next !== undefined && this.#spend(`status ${status}`)) {
        report.retrying(next.instance, 'status')
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
    this.#report.succeeded(a.instance)
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
    if (this.#aborted === undefined && failure.kind !== undefined) this.#report.failed(a.instance, failure.kind, err)
    // Idempotent requests may be retried after any connection failure; others only when nothing was sent.
    this.#retryOrFail(err, this.#idempotent ? failure.connection : failure.neverSent, 'error')
  }

  #timeout (a: Attempt): void {
    const policy = this.#policy
    // Not a latency sample: all it says is "longer than the timeout", and while it was stuck its age in
    // flight already priced the instance out. Taken as a peak, 2 s would keep a replica that thawed out
    // of least-request for a minute while it decayed (P23 measured it); the ejection and its probe decide.
    this.#report.timedOut(a.instance)
    const err = new errors.HeadersTimeoutError(`no response headers within the per-try timeout (${policy.perTryTimeout} ms)`)
    this.#current = undefined
    a.detached = err
    // Not on a connection yet (queued in the pool): onConnect aborts it when it gets one.
    a.abort?.(err)
    this.#retryOrFail(err, true, 'timeout')
  }

  #mayRetry (): boolean {
    return !this.#responded && this.#path.length <= this.#policy.maxRetries && isReplayableBody(this.#opts.body)
  }

  #spend (reason: string | undefined): boolean {
    if (this.#policy.budget.tryRetry()) return true
    this.#report.denied(reason)
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
    this.#report.retrying(next.instance, cause)
    // Out of undici's error path before dispatching again.
    queueMicrotask(() => this.#send(next))
  }
}
