import type { Duplex } from 'node:stream'
import { errors, type Dispatcher } from 'undici'
import { UpstreamUnusableError } from '../../errors.js'
import { noteAnswer } from './answer-signals.js'
import { settle, startAttempt, type Attempt } from './attempt.js'
import { DEADLINE_HEADER, MIN_TRY_MS, requestDeadline } from './deadline.js'
import { classifyFailure } from './failure.js'
import { headerValues, withHeaders } from './request-headers.js'
import { isIdempotent, isReplayableBody, type RequestOutcome, type RetryPolicy } from './retry-policy.js'
import type { RetryCause, RetryReport, RetryRoute, Target } from './retry-route.js'
import type { Instance } from '../watch/instance.js'
import { endSpan, startRequestSpan, startTrySpan, type RequestTrace, type TryReason } from './try-spans.js'
import { TryRace } from './try-race.js'
import type { LegacyHandler } from './undici-handler.js'

// What a request's own headers carry into the dispatcher: its deadline and its trace context, read in one pass.
const CARRIED_HEADERS = [DEADLINE_HEADER, 'traceparent', 'tracestate'] as const

export type { RetryCause, RetryReport, RetryRoute, Target } from './retry-route.js'

/**
 * The go-kit "retry", with Finagle's backup requests and gRPC's deadlines: wraps the caller's handler
 * for the life of one request and sends it again, to an instance it has not tried yet, when an attempt
 * failed before any response reached the caller and the request can be repeated (after a connection
 * failure; for idempotent requests after the per-try timeout or on a `retryOn` status, whose body is
 * drained and dropped); sends an idempotent request a second time beside a try slower than the hedge
 * delay, the first answer winning and the other aborted; and fails it with a coded 504 the moment its
 * deadline passes. The caller sees one onConnect, and one response or one error, whatever the attempts.
 * It decides; the TryRace it holds carries the decisions out on the tries in flight.
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
  /** The tries that may still answer, the winner, their timers and the caller's abort; decisions stay here. */
  readonly #race: TryRace
  /** The instance of the latest attempt, for `ended`. */
  #last: Instance | undefined
  #trace!: RequestTrace
  #startedAt = 0
  #status = 0
  #connected = false
  #responded = false
  #hedged = false

  constructor (route: RetryRoute, opts: Dispatcher.DispatchOptions, handler: LegacyHandler) {
    this.#route = route
    this.#policy = route.policy
    this.#report = route.report
    this.#opts = opts
    this.#handler = handler
    this.#idempotent = isIdempotent(opts)
    this.#race = new TryRace(route.report, route.policy.now)
  }

  start (): void {
    const policy = this.#policy
    this.#startedAt = policy.now()
    policy.budget.onRequest()
    const carried = headerValues(this.#opts.headers, CARRIED_HEADERS)
    this.#trace = startRequestSpan(policy.service, this.#opts.method, carried)
    const deadline = requestDeadline(carried[DEADLINE_HEADER], policy.deadlineMs)
    if (deadline !== undefined && !this.#race.runUntil(deadline, () => this.#expire())) {
      this.#expire()
      return
    }
    const first = this.#route.choose(this.#tried)
    if (first === undefined) this.#fail(policy.noInstance(), 'no_instance')
    else this.#send(first, 'first')
  }

  /** Tells the route once how the request ended, and ends its span and timers; the caller's own callback follows. */
  #finish (outcome: RequestOutcome, err?: Error): void {
    this.#race.stop()
    const attempts = this.#path.length
    this.#report.ended(this.#last, outcome, this.#policy.now() - this.#startedAt, attempts > 0 ? attempts - 1 : 0)
    endSpan(this.#trace.span, err === undefined ? { status: this.#status } : { error: err })
  }

  #fail (err: Error, outcome: RequestOutcome): void {
    // Given up before any answer: one coded error whatever the tries were, the last one's as its cause.
    // An error after the answer started (the body cut off) is the response stream's own, as undici's is.
    const reported = outcome === 'failed' && !this.#responded ? this.#policy.gaveUp(err, this.#path) : err
    this.#finish(outcome, reported)
    this.#handler.onError(reported)
  }

  // Never called once the request is finished: every path that finishes it (#fail, #onComplete of the
  // winner, #onUpgrade) has no send queued behind it, and #finish clears the hedge and deadline timers.
  #send (target: Target, reason: TryReason): void {
    if (this.#race.aborted !== undefined) {
      if (this.#race.size === 0) this.#fail(this.#race.aborted, 'aborted')
      return
    }
    const left = this.#race.remaining()
    if (left !== undefined && left < MIN_TRY_MS) {
      // Too little left for an answer to come back: no try starts (the deadline's timer ends the request).
      if (this.#race.size === 0) this.#expire()
      return
    }
    const policy = this.#policy
    const { instance, origin } = target
    this.#tried.add(origin)
    this.#path.push(instance.id)
    this.#last = instance
    const { span, headers } = startTrySpan(this.#trace, { method: this.#opts.method, instanceId: instance.id, origin, resendCount: this.#path.length - 1, reason })
    if (left !== undefined) headers[DEADLINE_HEADER] = String(Math.floor(left))
    const opts = Object.keys(headers).length === 0 ? this.#opts : { ...this.#opts, headers: withHeaders(this.#opts.headers, headers) }
    const a = startAttempt(target, reason, span, policy.now())
    this.#race.enter(a, this.#idempotent ? policy.perTryTimeout : 0, () => this.#timeout(a))
    this.#armHedge()
    try {
      this.#route.send(a, opts, this.#handlerFor(a))
    } catch (err) {
      // Building the instance's pool or handing it the request threw. This runs inside dispatch(), a
      // microtask or a timer: a throw escaping from the last two kills the process. It is this
      // attempt's failure instead, counted against the instance and retried elsewhere.
      this.#onError(a, Object.assign(new UpstreamUnusableError(origin, String((err as Error).message)), { cause: err }))
    }
  }

  /** The handler undici drives for one attempt; everything the caller sees goes through this class. */
  #handlerFor (a: Attempt): LegacyHandler {
    return {
      onConnect: (abort, context) => this.#onConnect(a, abort, context),
      onError: (err) => this.#onError(a, err),
      // Passed on with the headers instead: a drained `retryOn` answer must not start the caller's response.
      onResponseStarted: () => {},
      onHeaders: (status, headers, resume, text) => this.#onHeaders(a, status, headers, resume, text),
      // Only the winner's body reaches the caller; returning true keeps reading a drained one to its end.
      onData: (chunk) => a !== this.#race.winner || this.#handler.onData!(chunk),
      onComplete: (trailers) => this.#onComplete(a, trailers),
      onUpgrade: (status, headers, socket) => this.#onUpgrade(a, status, headers, socket),
      onBodySent: (chunk, total) => this.#handler.onBodySent?.(chunk, total),
      onRequestSent: () => this.#handler.onRequestSent?.()
    }
  }

  // Handed to the caller once; aborts every try in flight, or the next one.
  readonly #abort = (reason?: Error): void => this.#race.abort(reason ?? new errors.RequestAbortedError())

  #onConnect (a: Attempt, abort: (err?: Error) => void, context?: unknown): void {
    a.abort = abort
    const reason = a.detached ?? this.#race.aborted
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
    a.status = status
    const retryable = this.#policy.retryOn.has(status)
    noteAnswer(a, status, headers, retryable, this.#idempotent, this.#policy, this.#report)
    if (this.#idempotent && retryable) {
      if (this.#race.size > 1) {
        // Another try is still out: it answers instead; this one is drained and dropped.
        this.#race.leave(a)
        return true
      }
      if (this.#mayRetry()) {
        const next = this.#route.choose(this.#tried)
        if (next !== undefined && this.#spend(`status ${status}`)) {
          this.#report.retrying(next.instance, 'status')
          // The retry's own send arms a new hedge timer: nothing to race meanwhile.
          this.#race.stopHedge()
          a.next = next
          return true
        }
      }
    }
    this.#commit(a, status)
    this.#handler.onResponseStarted?.()
    return this.#handler.onHeaders!(status, headers, resume, text)
  }

  /** `a`'s answer goes to the caller; the race aborts every other try. */
  #commit (a: Attempt, status: number): void {
    this.#responded = true
    this.#status = status
    this.#race.commit(a)
  }

  #onComplete (a: Attempt, trailers: string[] | Buffer[] | null): void {
    settle(a, this.#report)
    this.#race.leave(a)
    if (a === this.#race.winner) {
      this.#finish(this.#status >= 500 ? 'server_error' : 'success')
      this.#handler.onComplete!(trailers)
      return
    }
    // A drained `retryOn` answer: its retry goes out now (a dropped one has none).
    const next = a.next
    if (next !== undefined) queueMicrotask(() => this.#send(next, 'status'))
  }

  #onUpgrade (a: Attempt, status: number, headers: Buffer[] | string[] | null, socket: Duplex): void {
    settle(a, this.#report)
    this.#report.succeeded(a.instance)
    this.#commit(a, status)
    this.#finish('success')
    this.#handler.onResponseStarted?.()
    this.#handler.onUpgrade!(status, headers, socket)
  }

  #onError (a: Attempt, err: Error): void {
    a.failure ??= err
    // A second error for one attempt: a pool that reported a failure and then threw as well.
    if (!settle(a, this.#report)) return
    // Detached (per-try timeout, a faster try, the deadline) or dropped: the request has moved on already.
    if (!this.#race.leave(a)) return
    const next = a.next
    if (next !== undefined) {
      // The connection died while a `retryOn` answer was drained: the retry was decided and paid for.
      queueMicrotask(() => this.#send(next, 'status'))
      return
    }
    const failure = classifyFailure(err)
    if (this.#race.aborted === undefined && failure.kind !== undefined) this.#report.failed(a.instance, failure.kind, err)
    // Another try is still out (a hedge): it answers instead.
    if (this.#race.size > 0) return
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
    this.#race.cutOff(a, err)
    if (this.#race.size === 0) this.#retryOrFail(err, true, 'timeout')
  }

  /** After the hedge delay, a lone try that has not answered gets a twin on another instance. */
  #armHedge (): void {
    const hedge = this.#policy.hedge
    if (hedge === undefined || this.#hedged || this.#race.size !== 1 || !this.#idempotent || this.#opts.upgrade != null || !this.#mayRetry()) return
    this.#race.armHedge(hedge.ms, () => this.#hedge())
  }

  // The timer runs only while one try is out and nothing else was decided: every path that answers,
  // aborts, fails over or decides a retry clears it first, and a retry's send arms a new one.
  #hedge (): void {
    // A stream body the first try has read since the timer was armed cannot be sent again.
    if (!isReplayableBody(this.#opts.body)) return
    const next = this.#route.choose(this.#tried)
    if (next === undefined || !this.#spend('hedge')) return
    this.#hedged = true
    this.#report.hedging(next.instance)
    this.#send(next, 'hedge')
  }

  /** The deadline passed: every try in flight is aborted, and the caller gets the coded 504 now. */
  #expire (): void {
    const err = this.#policy.expired(this.#race.budgetMs)
    this.#report.expired()
    this.#race.abandon(err)
    this.#fail(err, 'deadline_exceeded')
  }

  #mayRetry (): boolean {
    return !this.#responded && this.#path.length <= this.#policy.maxRetries && isReplayableBody(this.#opts.body)
  }

  #spend (reason: string | undefined): boolean {
    // The throttle first: a retry it refuses must not take a token from the budget.
    if (this.#policy.throttle?.open !== false && this.#policy.budget.tryRetry()) return true
    this.#report.denied(reason)
    return false
  }

  #retryOrFail (err: Error, retryable: boolean, cause: RetryCause): void {
    this.#race.stopHedge()
    if (this.#race.aborted !== undefined) {
      this.#fail(this.#race.aborted, 'aborted')
      return
    }
    const next = retryable && this.#mayRetry() ? this.#route.choose(this.#tried) : undefined
    if (next === undefined || !this.#spend((err as Error & { code?: string }).code)) {
      this.#fail(err, 'failed')
      return
    }
    this.#report.retrying(next.instance, cause)
    // Out of undici's error path before dispatching again.
    queueMicrotask(() => this.#send(next, cause))
  }
}
