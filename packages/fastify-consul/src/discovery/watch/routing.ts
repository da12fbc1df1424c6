import type { Instance } from './instance.js'

// Which instances a caller routes to, decided on the client from every instance and its checks. This is
// where "fail static" lives: a health signal that drops (almost) everyone at once, an overload that makes
// every replica answer 503 to its probe or an operator's check gone wrong, is more likely to be wrong
// than every replica being dead. Below the panic threshold we route to everyone and let retries and
// outlier ejection find the ones that really fail (Envoy's panic threshold).

export interface Routing {
  /** What the balancers pick from. */
  readonly instances: readonly Instance[]
  /** True when the healthy share fell below the threshold and every non-maintenance instance is routed to. */
  readonly panic: boolean
  /** Instances that are neither in maintenance nor failing (warning counts unless passingOnly). */
  readonly routable: number
  /** Instances not in maintenance: the pool panic routing falls back on. */
  readonly candidates: number
}

export const NO_ROUTE: Routing = Object.freeze({ instances: Object.freeze([]), panic: false, routable: 0, candidates: 0 })

/**
 * `panicThreshold` is a share from 0 to 1: with fewer than that share of candidates routable, route to
 * all candidates. Any threshold panics when nothing is routable but candidates exist: "no healthy
 * instance" with live processes behind it is the outage we refuse to cause. Maintenance is an
 * operator's explicit word and is always obeyed.
 */
export function route (all: readonly Instance[], passingOnly: boolean, panicThreshold: number): Routing {
  const candidates = all.filter((i) => !i.maintenance)
  if (candidates.length === 0) return NO_ROUTE
  const routable = candidates.filter((i) => i.weight > 0 && (i.status === 'passing' || (!passingOnly && i.status === 'warning')))
  if (routable.length > 0 && routable.length >= panicThreshold * candidates.length) {
    return { instances: routable, panic: false, routable: routable.length, candidates: candidates.length }
  }
  // In panic a failing instance still weighs something: healthy ones keep their larger share.
  const instances = candidates.map((i) => i.weight > 0 ? i : Object.freeze({ ...i, weight: 1 }))
  return { instances, panic: true, routable: routable.length, candidates: candidates.length }
}
