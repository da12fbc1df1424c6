import type { Instance } from '../watch/instance.js'
import type { UpstreamLoad } from './upstream-load.js'

export type BalancerName = 'round-robin' | 'random' | 'weighted' | 'least-request'
export const BALANCERS: readonly BalancerName[] = Object.freeze(['round-robin', 'random', 'weighted', 'least-request'])

/**
 * Picks one instance from a fixed snapshot. Built once per snapshot (all precomputation happens in the
 * constructor), so `pick()` is a few array reads: no I/O, no allocation.
 */
export interface Balancer {
  readonly name: BalancerName
  /** How many instances can be picked (weight > 0). */
  readonly size: number
  /** An instance, or undefined when the snapshot has none to offer. */
  pick (): Instance | undefined
}

export interface BalancerOptions {
  /** Uniform source in [0, 1); Math.random by default. Inject a fixed sequence for deterministic tests. */
  random?: () => number
  /**
   * The live load of each instance, for 'least-request'. The dispatcher keeps one per upstream and
   * updates it as attempts start and end; a plain watch has none, and 'least-request' then picks by
   * weight alone.
   */
  load?: (instance: Instance) => UpstreamLoad
  /** Milliseconds clock the loads are stamped with; `performance.now` by default. */
  now?: () => number
}

export function randomIndex (random: () => number, n: number): number {
  // min() guards a random source that returns exactly 1.
  return Math.min(n - 1, Math.floor(random() * n))
}
