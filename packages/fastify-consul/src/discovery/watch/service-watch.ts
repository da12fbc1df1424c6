import type { BackoffOptions } from '../../util/backoff.js'
import type { Instance } from './instance.js'
import type { InstanceSet } from './instance-set.js'
import type { Locality } from './locality.js'

/**
 * - `starting`: no answer from Consul yet.
 * - `live`: the last query succeeded.
 * - `stale`: queries fail; the last good set is still served, for at most `staleTtl`.
 * - `expired`: queries kept failing for `staleTtl`; the set was cleared.
 * - `closed`: stopped.
 */
export type WatchState = 'starting' | 'live' | 'stale' | 'expired' | 'closed'

/** What one watcher asks Consul. Two discover() calls with equal queries share a watcher. */
export interface WatchQuery {
  service: string
  tag?: string | undefined
  dc?: string | undefined
  /** Route only to instances whose every check passes. When false, warning instances are routed to at their warning weight. */
  passingOnly: boolean
  /** A bexpr filter (`?filter`, Consul ≥ 1.5). */
  filter?: string | undefined
  /** `?stale`: any server may answer, so reads survive the loss of the leader. */
  stale: boolean
  /** `?cached`: served by the agent's background-refreshed cache (one server query per agent). */
  cached?: boolean | undefined
  /** Prefer the caller's zone: its instances are the first priority level, the rest of the datacenter the next. */
  locality?: Locality | undefined
}

/** One priority level of a watch: what it holds and the share of traffic it takes now. */
export interface PriorityLevel {
  /** The datacenter as the options name it; undefined for the local agent's own. */
  readonly datacenter: string | undefined
  /** With locality: the caller's zone for its level, undefined for the level of every other zone. */
  readonly zone: string | undefined
  /** The state of the watch feeding this level: 'stale' means its last known instances are kept. */
  readonly state: WatchState
  /** Instances neither in maintenance nor failing. */
  readonly routable: number
  /** Instances not in maintenance. */
  readonly candidates: number
  /** min(1, 1.4 × routable ÷ candidates): the level keeps all its traffic down to ~71 % healthy. */
  readonly health: number
  /** The share of traffic this level takes now, from 0 to 1. */
  readonly load: number
}

export interface WatchListener {
  change (set: InstanceSet): void
  state (state: WatchState): void
  panic (panic: boolean): void
  /** Every instance of the last answer changed (a status, maintenance, an instance added or gone). `change` also fires when only `fallback` changed. */
  all (set: InstanceSet): void
}

/** What a watch handle reads: a Watcher (one query) or a PriorityWatcher (failover over datacenters). */
export interface WatchSource {
  readonly query: WatchQuery
  readonly ready: Promise<void>
  /** Resolves once Consul was asked once, whatever it answered (never rejects). */
  readonly attempted: Promise<void>
  /** The routed snapshot: what balancers pick from. */
  readonly current: InstanceSet
  /** Every instance known, routed or not. */
  readonly all: InstanceSet
  /** The next level's healthy instances, for a request's last try (see Routing.fallback). */
  readonly fallback: InstanceSet
  readonly state: WatchState
  readonly panic: boolean
  readonly lastContact: number | undefined
  readonly priorities: readonly PriorityLevel[]
  /** Returns the unsubscribe function. */
  subscribe (listener: WatchListener): () => void
  stop (): Promise<void>
}

export interface RateLimit {
  /** Sustained loop iterations per second. */
  perSecond: number
  /** Iterations allowed back to back before the rate applies. */
  burst: number
}

export interface WatchTuning {
  /** Blocking-query wait in ms (Consul caps it at 10 min). */
  wait: number
  /** How long the last good set is served while queries fail, in ms; Infinity: for the whole outage. */
  staleTtl: number
  /** Below this share of routable instances (0–1), route to every instance not in maintenance. */
  panicThreshold: number
  backoff: BackoffOptions
  rateLimit: RateLimit
  random: () => number
}

/** The read side of a watch that callers hold; see DiscoveryRegistry.discover(). */
export interface ServiceWatch {
  readonly service: string
  /** What `pick()` chooses from: the routable instances, or every non-maintenance one in panic. */
  readonly instances: readonly Instance[]
  /** Every instance Consul lists, with its status and maintenance flag, routed to or not. */
  readonly all: readonly Instance[]
  /**
   * With `failover` or `locality`: the healthy instances of the first level that takes no traffic now.
   * A dispatcher sends a request's last try there when the routed instances failed it. Empty otherwise.
   */
  readonly fallback: readonly Instance[]
  readonly state: WatchState
  /** True while the healthy share is below `panicThreshold` and every non-maintenance instance is routed to. */
  readonly panic: boolean
  /** When Consul was last read successfully (epoch ms), or undefined before the first answer. */
  readonly lastContact: number | undefined
  /**
   * The priority levels traffic is split over, local first: one per datacenter with `failover`, the
   * caller's zone and the rest with `locality`, one level otherwise.
   */
  readonly priorities: readonly PriorityLevel[]
  /** Resolves on the first successful answer; rejects only when the watch is closed first. */
  readonly ready: Promise<void>
  /** The next instance by this watch's balancer. Throws FST_REG_DISCOVERY_NO_INSTANCE when empty. */
  pick (): Instance
  on (event: 'change', listener: (instances: readonly Instance[]) => void): this
  on (event: 'state', listener: (state: WatchState) => void): this
  on (event: 'panic', listener: (panic: boolean) => void): this
  off (event: 'change', listener: (instances: readonly Instance[]) => void): this
  off (event: 'state', listener: (state: WatchState) => void): this
  off (event: 'panic', listener: (panic: boolean) => void): this
  /** Idempotent. The shared watcher stops when its last holder closes. */
  close (): Promise<void>
}
