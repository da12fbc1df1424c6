import type { Instance } from './instance.js'

// Which instances a caller routes to, decided on the client from every instance and its checks. This is
// where "fail static" lives: a health signal that drops (almost) everyone at once, an overload that makes
// every replica answer 503 to its probe or an operator's check gone wrong, is more likely to be wrong
// than every replica being dead. Below the panic threshold we route to everyone and let retries and
// outlier ejection find the ones that really fail (Envoy's panic threshold).
//
// With failover (several datacenters) or locality (zones), the instances come in priority levels, the
// local ones first, and traffic spills from a level to the next in proportion to its health, with
// Envoy's priority rules (see prioritize()).

/** Envoy's overprovisioning factor: a level keeps all its traffic down to 1 / 1.4 ≈ 71 % healthy. */
export const OVERPROVISIONING = 1.4

/**
 * Weight a split across levels is spread over: per-instance weights become integers (the smooth
 * weighted schedule needs them) whose sums are in the ratio of the levels' loads, to 0.1 %.
 */
const SPLIT_SCALE = 1000

/** One priority level's part in a routing decision. */
export interface LevelRouting {
  /** Instances neither in maintenance nor failing (warning counts unless passingOnly). */
  readonly routable: number
  /** Instances not in maintenance. */
  readonly candidates: number
  /** Envoy's priority health: min(1, 1.4 × routable ÷ candidates), 0 without candidates. */
  readonly health: number
  /** The share of traffic this level takes, from 0 to 1; the loads of all levels sum to 1 (or all are 0). */
  readonly load: number
}

export interface Routing {
  /** What the balancers pick from. */
  readonly instances: readonly Instance[]
  /** True when every level is below the panic threshold, and each loaded level routes to every candidate. */
  readonly panic: boolean
  /** Instances that are neither in maintenance nor failing, over all levels. */
  readonly routable: number
  /** Instances not in maintenance, over all levels: the pool panic routing falls back on. */
  readonly candidates: number
  /** One entry per level, in priority order (one level without failover or locality). */
  readonly levels: readonly LevelRouting[]
  /**
   * The healthy instances of the first level that takes no traffic: where a dispatcher sends a
   * request's last try when the loaded levels failed it (Envoy's `previous_priorities` retry), so a
   * datacenter that died faster than Consul noticed costs no request. Empty without such a level.
   */
  readonly fallback: readonly Instance[]
}

export const NO_ROUTE: Routing = Object.freeze({ instances: Object.freeze([]), panic: false, routable: 0, candidates: 0, levels: Object.freeze([]), fallback: Object.freeze([]) })

function isRoutable (i: Instance, passingOnly: boolean): boolean {
  return i.weight > 0 && (i.status === 'passing' || (!passingOnly && i.status === 'warning'))
}

/**
 * `panicThreshold` is a share from 0 to 1: with fewer than that share of candidates routable, route to
 * all candidates. Any threshold panics when nothing is routable but candidates exist: "no healthy
 * instance" with live processes behind it is the outage we refuse to cause. Maintenance is an
 * operator's explicit word and is always obeyed.
 */
export function route (all: readonly Instance[], passingOnly: boolean, panicThreshold: number): Routing {
  return prioritize([all], passingOnly, panicThreshold)
}

/**
 * Routing over priority levels (level 0 first: the local zone, then the rest of the local datacenter,
 * then each failover datacenter in order), with Envoy's priority rules:
 *
 * - Each level's health is min(1, 1.4 × routable ÷ candidates): a level keeps all the traffic until
 *   fewer than 1 / 1.4 ≈ 71 % of it is healthy, then sheds in proportion.
 * - Loads are given in order: level i takes min(its health, what is left). When the healths sum to
 *   less than 1, the loads are scaled up to sum to 1 (Envoy's normalized total health).
 * - Panic is global and rare: only when **every** level that has candidates is below `panicThreshold`
 *   (or nothing anywhere is routable). Then each loaded level routes to all its candidates; with no
 *   health anywhere, all traffic goes to the first level that has candidates, as Envoy sends it to P0.
 *   One datacenter above its threshold is enough to route to healthy instances only: we would rather
 *   send traffic far to healthy replicas than near to ones Consul says are failing. (Envoy panics a
 *   single level as soon as the normalized total drops below 100 %; we keep "only when every level is
 *   short", which is what a failover list promises.)
 *
 * A level's share reaches the balancers as weight: when traffic is split over several levels, each
 * instance's weight is rescaled so that the weights of a level sum to its load (the weighted and
 * least-request balancers honour this exactly; round-robin and random spread by instance count).
 * With one loaded level, weights are Consul's, unchanged.
 */
export function prioritize (levels: ReadonlyArray<readonly Instance[]>, passingOnly: boolean, panicThreshold: number): Routing {
  const counted = levels.map((all) => {
    const candidates = all.filter((i) => !i.maintenance)
    const routable = candidates.filter((i) => isRoutable(i, passingOnly))
    return { candidates, routable }
  })
  const candidates = counted.reduce((n, l) => n + l.candidates.length, 0)
  if (candidates === 0) return NO_ROUTE
  const routable = counted.reduce((n, l) => n + l.routable.length, 0)
  const health = counted.map((l) => l.candidates.length === 0 ? 0 : Math.min(1, OVERPROVISIONING * l.routable.length / l.candidates.length))
  const panic = !counted.some((l) => l.routable.length > 0 && l.routable.length >= panicThreshold * l.candidates.length)
  const loads = spill(health, counted.map((l) => l.candidates.length))
  const chosen: Instance[][] = counted.map((l, i) => {
    if (loads[i] === 0) return []
    // In panic a failing instance still weighs something: healthy ones keep their larger share.
    return panic ? l.candidates.map((c) => c.weight > 0 ? c : Object.freeze({ ...c, weight: 1 })) : l.routable
  })
  const loaded = chosen.filter((c) => c.length > 0).length
  const instances = loaded > 1 ? chosen.flatMap((list, i) => rescale(list, loads[i]!)) : chosen.flat()
  const spare = counted.find((l, i) => loads[i] === 0 && l.routable.length > 0)
  return {
    instances,
    fallback: spare === undefined ? [] : spare.routable,
    panic,
    routable,
    candidates,
    levels: counted.map((l, i) => ({ routable: l.routable.length, candidates: l.candidates.length, health: health[i]!, load: loads[i]! }))
  }
}

/** Envoy's load split: in order, each level takes min(health, what is left); normalized when short. */
function spill (health: readonly number[], candidates: readonly number[]): number[] {
  const total = health.reduce((a, b) => a + b, 0)
  if (total === 0) {
    const first = candidates.findIndex((n) => n > 0)
    return health.map((_, i) => i === first ? 1 : 0)
  }
  if (total < 1) return health.map((h) => h / total)
  let left = 1
  return health.map((h) => {
    const load = Math.min(h, left)
    left -= load
    return load
  })
}

/** Weights of one level's instances, scaled so that they sum to `load` × SPLIT_SCALE (each at least 1). */
function rescale (list: readonly Instance[], load: number): Instance[] {
  const sum = list.reduce((n, i) => n + i.weight, 0)
  return list.map((i) => Object.freeze({ ...i, weight: Math.max(1, Math.round(SPLIT_SCALE * load * i.weight / sum)) }))
}
