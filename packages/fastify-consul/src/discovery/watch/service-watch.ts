import type { BackoffOptions } from '../../util/backoff.js'
import type { Instance } from './instance.js'

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
  readonly state: WatchState
  /** True while the healthy share is below `panicThreshold` and every non-maintenance instance is routed to. */
  readonly panic: boolean
  /** When Consul was last read successfully (epoch ms), or undefined before the first answer. */
  readonly lastContact: number | undefined
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
