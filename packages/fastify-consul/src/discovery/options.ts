import type { Pool } from 'undici'
import { msOr, toMs } from '../consul/duration.js'
import { DiscoveryInvalidOptionError } from '../errors.js'
import type { BackoffOptions } from '../util/backoff.js'
import type { Unset } from '../util/unset.js'
import { fieldOf, firstProblem, objectFormProblem } from '../util/validate.js'
import { hedgeObjectSchema, localityObjectSchema, queryFields, retryThrottleSchema, SCHEMAS, type OptionsKind } from './option-schemas.js'
import type { BalancerName } from './lb/balancer.js'
import type { DispatcherTuning } from './dispatch/service-dispatcher.js'
import type { HedgeSettings } from './dispatch/hedge-delay.js'
import type { RetryBudgetOptions } from './dispatch/retry-policy.js'
import type { RetryThrottleOptions } from './dispatch/retry-throttle.js'
import type { RateLimit, WatchQuery, WatchTuning } from './watch/service-watch.js'
import type { FailoverSettings } from './watch/failover-datacenters.js'
import type { Locality } from './watch/locality.js'

// Discovery's options: what a user may write, every default, and the one function that turns what a user
// wrote into complete settings (validated against option-schemas.ts). The watcher, the balancers and the
// dispatcher take those settings as given.

interface DiscoverFields {
  /** Only instances carrying this tag (`?tag`). */
  tag?: string
  /** Datacenter to query; the agent's own by default. */
  dc?: string
  /**
   * Fail over to other datacenters when this one runs short (Envoy's priority levels): `nearest: N`
   * takes the N nearest other datacenters by Consul's round-trip ranking, then `datacenters` in order.
   * Traffic stays local while at least ~71 % of the local instances are healthy, then spills to the
   * next datacenter in proportion (see README, "Failover across datacenters"). Default: none.
   */
  failover?: { datacenters?: string[], nearest?: number }
  /**
   * Prefer instances in the caller's zone (service meta `key`, else node meta): they take all traffic
   * while healthy enough and spill to the other zones as they run short. `true` uses the plugin's
   * zone (`service.zone` or `REG_ZONE`); `key` defaults to 'zone'. Default false.
   */
  locality?: boolean | { zone?: string, key?: string }
  /**
   * Default false: warning instances (an overloaded replica answers 429 to its check) are routed to at
   * their `Weights.Warning`, as Consul's DNS does. True routes to passing instances only.
   */
  passingOnly?: boolean
  /**
   * A share from 0 to 1, default 0.5 (Envoy's). When fewer than this share of the instances not in
   * maintenance are routable, route to all of them: a health signal that drops most of a fleet at once
   * is more likely wrong than the fleet dead. Nothing routable always panics; maintenance never routes.
   */
  panicThreshold?: number
  /** bexpr filter, e.g. `Service.Meta.version == "2"` (Consul ≥ 1.5). */
  filter?: string
  /** Let any Consul server answer (`?stale`), so reads survive the loss of the leader. Default false. */
  stale?: boolean
  /**
   * Read through the local agent's cache (`?cached`): every watcher of this query on the node shares one
   * background blocking query to the servers, so N processes cost the servers one query, not N. The
   * agent keeps serving its last result while the servers are unreachable. Default false.
   */
  cached?: boolean
  /** Default 'weighted' (Consul's `Weights`; equal weights are round-robin). */
  balancer?: BalancerName
  /**
   * Blocking-query wait: a duration from 1s to 10m (ms, or '2s', '5m'). Default 5m. This and the other
   * engine settings below apply when the call starts a watcher; later callers of the same query share
   * that watcher as it is.
   */
  wait?: number | string
  /** How long the last good set is served while Consul cannot be read. Default: the whole outage. */
  staleTtl?: number | string
  /**
   * How long `ready` may wait for Consul's first answer before it rejects with FST_REG_DISCOVERY_NOT_READY
   * (ms or a duration). The watch keeps trying either way. Default: no limit, so `await ready` waits out
   * a Consul outage at startup.
   */
  readyTimeout?: number | string
  /** Full-jitter backoff after failed queries. Default { base: 200, cap: 30000 } (ms). */
  backoff?: { base?: number | string, cap?: number | string }
  /** Rate limit on the query loop. Default { perSecond: 10, burst: 10 }. */
  rateLimit?: Partial<RateLimit>
  /** Uniform source in [0, 1) for the balancers and the backoff jitter. Default Math.random. */
  random?: () => number
}

/** What a dispatcher adds on top of the watch it is fed by. */
interface DispatchFields {
  /** Default 'weighted'. 'least-request' is P2C over outstanding requests with peak-EWMA latency. */
  balancer?: BalancerName
  /** Extra attempts per request, each on another instance. Default 2. */
  retries?: number
  /** Default { ratio: 0.2, minPerSecond: 10, burst: 100 }. */
  retryBudget?: Partial<RetryBudgetOptions>
  /**
   * gRPC's retry throttling: each failed answer (a 5xx or `retryOn` status) takes a token, each success
   * puts back `tokenRatio`, and at or below half the tokens no retry or hedge is sent.
   * Default { maxTokens: 10, tokenRatio: 1 }: retries stop while most attempts fail. false turns it off.
   */
  retryThrottle?: false | Unset<Partial<RetryThrottleOptions>>
  /**
   * How long an ejected instance backs off before the next request probes it (ms or a duration), times
   * its recent ejections; 0 turns ejection off. Default 1s.
   */
  ejectionMs?: number | string
  /** The longest back-off: it doubles with each failed probe, up to this. Default 5m. */
  maxEjectionMs?: number | string
  /** Failures in a row (timeouts, resets, 5xx to idempotent requests) that eject an instance. Default 5. */
  consecutiveFailures?: number
  /** The largest share of the instances ejected at once, in percent (at least one may always be). Default 50. */
  maxEjectionPercent?: number
  /** Statuses on which an idempotent request goes to another instance, e.g. [502, 503, 504]. Default none. */
  retryOn?: readonly number[]
  /** How long an idempotent request's attempt waits for response headers before it is retried elsewhere. Default 0: no limit. */
  perTryTimeout?: number | string
  /**
   * Slow start (Envoy's `slow_start_config`), for 'least-request': for this long after an instance joins
   * the set, its chance to be picked ramps from 10 % of its weight to all of it, and its latency is not
   * held against it (it competes on requests in flight; what it measured while cold is dropped when the
   * window ends). Default 0: off.
   */
  slowStartMs?: number | string
  /**
   * Hedged requests (Finagle's backup requests, gRPC's hedging): an idempotent request (GET, HEAD,
   * OPTIONS, PUT, DELETE, or `idempotent: true`) still unanswered after the hedge delay is sent once
   * more, to another instance; the first answer wins and the other try is aborted. Hedges spend the
   * retry budget. `true` adapts the delay to the service's p95; an object tunes it. Default false.
   */
  hedge?: boolean | Unset<HedgeFields>
  /**
   * Every request's deadline (ms or a duration), from dispatch to the end of its answer: no try starts
   * with less than 5 ms left, each try tells the instance what is left (`x-envoy-expected-rq-timeout-ms`),
   * and when it passes the tries are aborted and the caller gets FST_REG_DISCOVERY_DEADLINE_EXCEEDED
   * (504). A request's own header and the deadline of the request being handled apply too: the
   * earliest wins. Default 0: none.
   */
  deadline?: number | string
  /** Options for each upstream's undici Pool. */
  pool?: Pool.Options
  /** Uniform source in [0, 1) for the balancer. Default Math.random. */
  random?: () => number
}

interface HedgeFields {
  /** A fixed hedge delay (ms or a duration) instead of the adaptive one. */
  delay?: number | string
  /** The adaptive delay is this quantile of the service's recent answer times. Default 0.95. */
  percentile?: number
  /** The adaptive delay's floor. Default 10ms. */
  minDelay?: number | string
  /** The adaptive delay's cap, and the delay until 20 answers were seen. Default 1s. */
  maxDelay?: number | string
}

// Optional fields also take undefined ("not set"), for consumers with exactOptionalPropertyTypes.
export type DiscoverOptions = Unset<DiscoverFields>
export type DispatchOptions = Unset<DispatchFields>
export interface DispatcherOptions extends DiscoverOptions, DispatchOptions {}

export const DISCOVERY_DEFAULTS = Object.freeze({
  // Warning is routed to at its lower weight: overload is not death (see routing.ts).
  passingOnly: false,
  panicThreshold: 0.5,
  stale: false,
  cached: false,
  // Follows Consul's Weights, so warning instances get their smaller share; equal weights are round-robin.
  balancer: 'weighted' as BalancerName,
  wait: 5 * 60_000,
  // Fail static: the last known set is served for the whole Consul outage unless a bound is asked for.
  staleTtl: Infinity,
  backoff: Object.freeze({ base: 200, cap: 30_000 }),
  rateLimit: Object.freeze({ perSecond: 10, burst: 10 }),
  retries: 2,
  retryBudget: Object.freeze({ ratio: 0.2, minPerSecond: 10, burst: 100 }),
  // gRPC's throttle with a ratio of 1: retries stop while more than half of the attempts fail (a whole
  // fleet answering 503), and resume as soon as most succeed (gRPC's usual 0.1 needs 10 to 1).
  retryThrottle: Object.freeze({ maxTokens: 10, tokenRatio: 1 }),
  // Envoy's outlier detection: base and maximum ejection time.
  ejectionMs: 1000,
  maxEjectionMs: 300_000,
  // Envoy's consecutive_5xx. A refused connection ejects at once; a 500 may be one request's own
  // fault, so five in a row (any success resets the streak) before an instance counts as failing.
  consecutiveFailures: 5,
  // Ejection alone never takes more than half the pool (Envoy allows 10 %, which cannot eject even
  // one of three replicas after the first).
  maxEjectionPercent: 50,
  retryOn: Object.freeze([]) as readonly number[],
  // Off: only the caller knows how slow a legitimate answer may be (a report may take 30 s), and a
  // timeout below that would retry slow but healthy requests, doubling the load when it hurts most.
  perTryTimeout: 0,
  // Off, as in Envoy: a window delays a new replica's full share, which only the caller can weigh
  // against its warm-up. The gateway sample turns it on.
  slowStartMs: 0,
  // Off, as in Envoy and gRPC: a hedge doubles the work of a slow request, which only the caller can
  // weigh (is it idempotent in practice? is the upstream slow because it is overloaded?).
  hedge: Object.freeze({ percentile: 0.95, minDelay: 10, maxDelay: 1000 }),
  deadline: 0
})

/**
 * Checks options as given (no defaults applied). `prefix` is where the user wrote them: 'discovery' for
 * the plugin option, '' for a discover()/dispatcher() call. Throws FST_REG_DISCOVERY_INVALID_OPTION.
 */
export function validateDiscoveryOptions<T extends DispatcherOptions> (input: unknown, kind: OptionsKind, prefix = ''): T {
  const given = input ?? {}
  if (kind === 'dispatch' && typeof given === 'object' && given !== null) {
    // dispatcher(watch, opts): the query and its engine belong to the watch that was passed.
    const fromWatch = Object.keys(given).find((k) => k in queryFields)
    if (fromWatch !== undefined) throw new DiscoveryInvalidOptionError(fieldOf(prefix, fromWatch), `a dispatcher option; "${fromWatch}" is set by the watch you passed`)
  }
  const { hedge, retryThrottle } = given as DispatcherOptions
  const inner = objectFormProblem(hedgeObjectSchema, hedge, fieldOf(prefix, 'hedge')) ??
    objectFormProblem(localityObjectSchema, (given as DispatcherOptions).locality, fieldOf(prefix, 'locality')) ??
    objectFormProblem(retryThrottleSchema, retryThrottle, fieldOf(prefix, 'retryThrottle'))
  if (inner !== undefined) throw new DiscoveryInvalidOptionError(inner.field, inner.expected)
  // The object form passed its own schema, so both delays, when given, are durations toMs reads.
  if (typeof hedge === 'object' && hedge !== null && hedge.minDelay !== undefined && hedge.maxDelay !== undefined &&
    toMs(hedge.maxDelay)! < toMs(hedge.minDelay)!) {
    throw new DiscoveryInvalidOptionError(fieldOf(fieldOf(prefix, 'hedge'), 'maxDelay'), 'a duration >= hedge.minDelay')
  }
  const problem = firstProblem(SCHEMAS[kind], given, prefix)
  if (problem !== undefined) throw new DiscoveryInvalidOptionError(problem.field, problem.expected)
  const backoff = (given as DispatcherOptions).backoff
  if (backoff?.base !== undefined && backoff.cap !== undefined && toMs(backoff.cap)! < toMs(backoff.base)!) {
    throw new DiscoveryInvalidOptionError(fieldOf(prefix, 'backoff.cap'), 'a duration >= backoff.base')
  }
  return given as T
}

export interface WatchSettings extends WatchTuning {
  query: WatchQuery
  /** Set when the watch fails over to other datacenters: a PriorityWatcher over one watcher per datacenter. */
  failover: FailoverSettings | undefined
  /** Equal keys share one watcher: the query only, never the tuning. */
  key: string
}

/** How a handle or a dispatcher picks: the one place the `balancer` and `random` options are read. */
export interface BalancerSettings {
  balancer: BalancerName
  random: () => number
}

export interface DispatchSettings extends DispatcherTuning, BalancerSettings {}

/**
 * The complete watch settings for `service`: the call's options over the plugin's, over the defaults.
 * `zone` is the plugin's own (for `locality: true`); `failoverField` names where `failover` was written.
 */
export function watchSettings (service: string, o: DiscoverOptions, zone?: string, failoverField = 'failover'): WatchSettings {
  const locality = localitySettings(o.locality, zone)
  const failover: FailoverSettings | undefined = o.failover === undefined || ((o.failover.datacenters ?? []).length === 0 && (o.failover.nearest ?? 0) === 0)
    ? undefined
    : { datacenters: o.failover.datacenters ?? [], nearest: o.failover.nearest ?? 0, field: failoverField }
  const query: WatchQuery = {
    service,
    tag: o.tag,
    dc: o.dc,
    passingOnly: o.passingOnly ?? DISCOVERY_DEFAULTS.passingOnly,
    filter: o.filter,
    stale: o.stale ?? DISCOVERY_DEFAULTS.stale,
    cached: o.cached ?? DISCOVERY_DEFAULTS.cached,
    locality
  }
  const panicThreshold = o.panicThreshold ?? DISCOVERY_DEFAULTS.panicThreshold
  const backoff: BackoffOptions = {
    base: msOr(o.backoff?.base, DISCOVERY_DEFAULTS.backoff.base),
    cap: msOr(o.backoff?.cap, DISCOVERY_DEFAULTS.backoff.cap)
  }
  // A cap below the base only comes from mixing a call's base with the default cap, or the reverse.
  if (backoff.cap < backoff.base) throw new DiscoveryInvalidOptionError('backoff.cap', `a duration >= backoff.base (${backoff.base} ms)`)
  return {
    query,
    key: JSON.stringify([query.service, query.tag ?? null, query.dc ?? null, query.passingOnly, query.filter ?? null, query.stale, query.cached, panicThreshold,
      locality === undefined ? null : [locality.zone, locality.key], failover === undefined ? null : [failover.nearest, failover.datacenters]]),
    failover,
    wait: msOr(o.wait, DISCOVERY_DEFAULTS.wait),
    panicThreshold,
    staleTtl: msOr(o.staleTtl, DISCOVERY_DEFAULTS.staleTtl),
    backoff,
    rateLimit: { ...DISCOVERY_DEFAULTS.rateLimit, ...o.rateLimit },
    random: o.random ?? Math.random
  }
}

function localitySettings (o: DiscoverOptions['locality'], zone: string | undefined): Locality | undefined {
  if (o === undefined || o === false) return undefined
  const given = o === true ? {} : o
  const own = given.zone ?? zone
  if (own === undefined) throw new DiscoveryInvalidOptionError('locality.zone', 'a zone name: set locality.zone, or the plugin\'s service.zone or REG_ZONE')
  return { zone: own, key: given.key ?? 'zone' }
}

/** The balancer a handle or dispatcher picks with: the call's options over the plugin's, over the default. */
export function balancerSettings (o: Pick<DispatchOptions, 'balancer' | 'random'>): BalancerSettings {
  return { balancer: o.balancer ?? DISCOVERY_DEFAULTS.balancer, random: o.random ?? Math.random }
}

/** The complete dispatcher settings: the call's options over the plugin's, over the defaults. */
export function dispatchSettings (o: DispatchOptions): DispatchSettings {
  return {
    ...balancerSettings(o),
    retries: o.retries ?? DISCOVERY_DEFAULTS.retries,
    retryBudget: { ...DISCOVERY_DEFAULTS.retryBudget, ...o.retryBudget },
    retryThrottle: o.retryThrottle === false ? undefined : { maxTokens: o.retryThrottle?.maxTokens ?? DISCOVERY_DEFAULTS.retryThrottle.maxTokens, tokenRatio: o.retryThrottle?.tokenRatio ?? DISCOVERY_DEFAULTS.retryThrottle.tokenRatio },
    ejectionMs: msOr(o.ejectionMs, DISCOVERY_DEFAULTS.ejectionMs),
    maxEjectionMs: msOr(o.maxEjectionMs, DISCOVERY_DEFAULTS.maxEjectionMs),
    consecutiveFailures: o.consecutiveFailures ?? DISCOVERY_DEFAULTS.consecutiveFailures,
    maxEjectionPercent: o.maxEjectionPercent ?? DISCOVERY_DEFAULTS.maxEjectionPercent,
    retryOn: o.retryOn ?? DISCOVERY_DEFAULTS.retryOn,
    perTryTimeout: msOr(o.perTryTimeout, DISCOVERY_DEFAULTS.perTryTimeout),
    slowStartMs: msOr(o.slowStartMs, DISCOVERY_DEFAULTS.slowStartMs),
    hedge: hedgeSettings(o.hedge),
    deadline: msOr(o.deadline, DISCOVERY_DEFAULTS.deadline),
    pool: o.pool ?? {}
  }
}

function hedgeSettings (o: DispatchOptions['hedge']): HedgeSettings | undefined {
  if (o === undefined || o === false) return undefined
  const given = o === true ? {} : o
  const d = DISCOVERY_DEFAULTS.hedge
  const settings = {
    delayMs: given.delay === undefined ? undefined : toMs(given.delay),
    percentile: given.percentile ?? d.percentile,
    minDelayMs: msOr(given.minDelay, d.minDelay),
    maxDelayMs: msOr(given.maxDelay, d.maxDelay)
  }
  // A cap below the floor only comes from one bound given and the other's default.
  if (settings.maxDelayMs < settings.minDelayMs) throw new DiscoveryInvalidOptionError('hedge.maxDelay', `a duration >= hedge.minDelay (${settings.minDelayMs} ms)`)
  return settings
}
