import type { EventEmitter } from 'node:events'
import type { Dispatcher, Pool } from 'undici'
import type { Logger } from '../../util/logger.js'
import type { BalancerName } from '../lb/balancer.js'
import type { Instance } from '../watch/instance.js'
import type { ServiceWatch } from '../watch/service-watch.js'
import type { FailureKind } from './failure.js'
import type { ConnectIdentitySource } from './connect-dialing.js'
import type { HedgeSettings } from './hedge-delay.js'
import type { RetryThrottleOptions } from './retry-throttle.js'
import type { RequestOutcome, RetryBudgetOptions } from './retry-policy.js'

export interface DispatcherTuning {
  /** Extra attempts per request, each on an instance not tried yet. Default 2. */
  retries: number
  /** Load that retries may add; see RetryBudget. */
  retryBudget: RetryBudgetOptions
  /** How long an ejected instance backs off before one request probes it, in ms (× its recent ejections). 0 turns ejection off. Default 1 s. */
  ejectionMs: number
  /** The longest back-off (it doubles with each failed probe), in ms. */
  maxEjectionMs: number
  /** Failures in a row (timeouts, resets, 5xx to idempotent requests) that eject an instance. */
  consecutiveFailures: number
  /** The largest share of the routable instances that may be ejected at once, in percent. */
  maxEjectionPercent: number
  /** Statuses on which an idempotent request is sent to another instance instead of answered. */
  retryOn: readonly number[]
  /** How long an idempotent request's attempt may wait for response headers before it is retried elsewhere, in ms; 0 for no limit. */
  perTryTimeout: number
  /** Envoy's slow-start window, in ms: how long an instance that joined the set is warming up (least-request only); 0 for none. */
  slowStartMs: number
  /** gRPC's retry throttling; undefined for none. */
  retryThrottle: RetryThrottleOptions | undefined
  /** Hedging of idempotent requests; undefined for none. */
  hedge: HedgeSettings | undefined
  /** Every request's deadline, in ms; 0 for none. */
  deadline: number
  /** Options for each upstream's undici Pool (connections, keep-alive, connect timeout, TLS…). */
  pool: Pool.Options
}

export interface ServiceDispatcherOptions extends DispatcherTuning {
  /** The watch that feeds the instances. The dispatcher owns it from now on and closes it in close(). */
  watch: ServiceWatch
  log: Logger
  balancer: BalancerName
  random: () => number
  /** Milliseconds clock for the retry budget, the latency estimates and ejection lengths; `performance.now` by default. */
  now?: () => number
  /** Called once when the dispatcher starts closing (the registry stops tracking it). */
  onClose?: () => void
  /** This app's Connect identity: Connect-native instances are dialed with it (mutual TLS). Without one they are not routed to. */
  connect?: ConnectIdentitySource | undefined
  /** Origins that are this process itself (see selfMatcher): never routed to. Default: none. */
  isSelf?: (origin: string) => boolean
}

export interface DispatcherStats {
  /** Requests dispatched (not attempts). */
  requests: number
  /** Extra attempts sent to another instance, whatever the cause. */
  retries: number
  /** Of those, retries because an idempotent request got a `retryOn` status. */
  statusRetries: number
  /** Retries and hedges that were allowed by method and error but refused by the retry throttle or budget. */
  retriesDenied: number
  /** Attempts cut short by `perTryTimeout`. */
  perTryTimeouts: number
  /** Instances ejected, for any reason. */
  ejections: number
  /** Of those, ejections after `consecutiveFailures` failures in a row (the rest refused a connection). */
  outlierEjections: number
  /** Ejections not made because `maxEjectionPercent` of the instances were out already. */
  ejectionsCapped: number
  /** Ejected instances back in rotation, after a successful probe or another request's success. */
  readmissions: number
  /** Requests sent as the probe of an ejected instance whose back-off was over. */
  probes: number
  /** Of those, probes that failed (the instance backed off again, twice as long). */
  probeFailures: number
  /** Second tries sent beside a try slower than the hedge delay (also counted in `retries`). */
  hedges: number
  /** Of those, hedges whose answer reached the caller first. */
  hedgesWon: number
  /** Requests whose deadline passed before their answer ended (the caller got a 504). */
  deadlinesExceeded: number
}

/** Why an ejected instance is back: its probe answered, or another request still in flight on it did. */
export type ReadmitReason = 'probe' | 'success'

export interface DispatcherEvents {
  /** An instance is skipped for `ms`, then probed: it refused a connection (`connect`), or failed `consecutiveFailures` times in a row (the last failure's kind). */
  eject: [instance: Instance, ejection: { reason: FailureKind, ms: number }]
  /** A probe failed: the instance backs off again for `ms` (a probe that passes emits `readmit`). */
  probe: [instance: Instance, probe: { passed: false, ms: number }]
  /** It is back in rotation after `ejectedMs` out: its probe answered (`probe`), or a request still in flight on it did (`success`). */
  readmit: [instance: Instance, reason: ReadmitReason, ejectedMs: number]
  /**
   * A request is over for the caller (for metrics and live views): the instance of its last attempt
   * (undefined when none could be picked), how it ended, how long it took in ms, and its retries.
   * Emitted only while someone listens; a listener runs on every request, so keep it cheap.
   */
  request: [instance: Instance | undefined, outcome: RequestOutcome, durationMs: number, retries: number]
  /** A hedge was sent to `instance`, beside a try slower than the hedge delay. */
  hedge: [instance: Instance]
  /** A hedge's answer reached the caller first (the slower try was aborted). */
  hedgeWon: [instance: Instance]
}

/**
 * An undici Dispatcher for one service. The URL origin a caller passes is a placeholder: each request
 * goes to an instance picked from the live watch, through one keep-alive Pool per instance, and is
 * sent again to a different instance when the connection fails before any response (and, for
 * idempotent requests, after `perTryTimeout` or on a `retryOn` status); with `hedge`, an idempotent
 * request slower than the hedge delay is sent once more beside its first try; with a deadline, it ends
 * in a coded 504 the moment the deadline passes. Outlier detection: an instance
 * that refuses a connection, or fails `consecutiveFailures` times in a row, is ejected (skipped), never
 * more than `maxEjectionPercent` of the instances at once. After a back-off the next request probes it:
 * a good answer re-admits it, a failure doubles the back-off. A request still in flight on an ejected
 * instance that succeeds re-admits it too.
 */
export interface ServiceDispatcher extends Dispatcher {
  /** The Consul service name. */
  readonly service: string
  /**
   * The watch that feeds it (instances, state, panic, `pick()` with this dispatcher's balancer). The
   * dispatcher owns it: close the dispatcher, not the watch.
   */
  readonly watch: ServiceWatch
  /** The watch's first answer; await it at startup to avoid NO_INSTANCE on the very first requests. */
  readonly ready: Promise<void>
  /** `eject` / `readmit`, kept apart from undici's own connection events. */
  readonly events: EventEmitter<DispatcherEvents>
  /** Counters since creation. */
  readonly stats: Readonly<DispatcherStats>
  /** The instances the watch currently serves, ejected ones included. */
  readonly instances: readonly Instance[]
  /** Instances currently ejected by outlier detection. */
  readonly ejected: readonly Instance[]
  /** Attempts in flight on `instance` right now (what least-request weighs); 0 for an instance it does not know. */
  outstanding (instance: Instance): number
  /** Lets in-flight requests finish, then closes every upstream pool and releases the watch. */
  close (): Promise<void>
  close (callback: () => void): void
}
