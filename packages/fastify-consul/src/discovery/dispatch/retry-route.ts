import type { Dispatcher } from 'undici'
import type { Instance } from '../watch/instance.js'
import type { FailureKind } from './failure.js'
import type { UpstreamLoad } from '../lb/upstream-load.js'
import type { LegacyHandler } from './undici-handler.js'
import type { RequestOutcome, RetryPolicy } from './retry-policy.js'

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
   * An attempt was beaten by a later try of the same request (its hedge) before it answered: a slow
   * failure, which outlier detection counts like any other, except that a probe lost this way backs off
   * again without doubling (see OutlierDetector.outpaced).
   */
  outpaced (instance: Instance): void
  /**
   * An attempt got no response headers within the per-try timeout: a failure that ejects at once (the
   * caller chose the timeout as the line past which an instance is stalled), reported here, not by `failed`.
   */
  timedOut (instance: Instance): void
  /** It answered 503 or 429 with a `Retry-After` of `ms`: leave it alone that long (ejection, within its cap). */
  backOff (instance: Instance, ms: number): void
  retrying (next: Instance, cause: RetryCause): void
  /** A second try is sent beside a slow first one, to `next`. */
  hedging (next: Instance): void
  /** The hedge to `instance` answered first and its answer went to the caller. */
  hedgeWon (instance: Instance): void
  /** The request's deadline passed before its answer ended. */
  expired (): void
  /** A retry or hedge that method, error and instances allowed, refused by the budget (the error's code, the status, or 'hedge'). */
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
