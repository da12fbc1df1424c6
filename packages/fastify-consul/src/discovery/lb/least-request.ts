import type { Instance } from '../watch/instance.js'
import { randomIndex, type Balancer, type BalancerOptions } from './balancer.js'
import type { UpstreamLoad } from './upstream-load.js'
import { AliasTable } from './weighted.js'

/** Draws per candidate under slow start: enough to scale a warming share, bounded so a pick stays O(1). */
const MAX_DRAWS = 4

/**
 * Power of two choices over live load (Finagle's and Linkerd's P2C with peak EWMA): two distinct
 * candidates drawn by Consul weight, and the one with the lower cost, latency × (outstanding + 1),
 * wins; on a tie the first. Weight steers who is considered, load decides between the two, so a
 * warning instance at weight 1 among passing ones at 10 is rarely a candidate, and a replica that
 * froze stops winning as soon as its requests pile up.
 *
 * Without loads (a plain watch's pick(), which has no view of what is in flight) the first candidate
 * always wins: a weighted random pick.
 *
 * Slow start (Envoy's): a warming instance drawn as a candidate is kept with the probability of its
 * warmth (10 % → 100 % over the window) and drawn again otherwise, so its share ramps up; and when
 * either candidate is warming they are compared on what is in flight alone (how many, how old), because a cold replica's
 * first answers are slow for reasons that pass (JIT, caches, connections) and, held against it as peak
 * EWMA, would keep it out for tens of seconds.
 */
export class LeastRequest implements Balancer {
  readonly name = 'least-request' as const
  readonly #list: readonly Instance[]
  readonly #loads: readonly UpstreamLoad[] | undefined
  readonly #table: AliasTable
  readonly #random: () => number
  readonly #now: () => number

  constructor (list: readonly Instance[], random: () => number, load: BalancerOptions['load'], now: () => number) {
    this.#list = list
    this.#loads = load === undefined ? undefined : list.map(load)
    this.#table = new AliasTable(list.map((i) => i.weight))
    this.#random = random
    this.#now = now
  }

  get size (): number {
    return this.#list.length
  }

  pick (): Instance | undefined {
    const n = this.#list.length
    if (n === 0) return undefined
    const loads = this.#loads
    if (loads === undefined || n === 1) return this.#list[this.#table.draw(this.#random)]
    const now = this.#now()
    const first = this.#draw(loads, now)
    let second = this.#draw(loads, now)
    // Two draws of the same instance would be no choice at all: take another one, uniformly.
    if (second === first) second = (first + 1 + randomIndex(this.#random, n - 1)) % n
    const a = loads[first]!
    const b = loads[second]!
    if (a.warmth(now) < 1 || b.warmth(now) < 1) return b.inFlightCost(now) < a.inFlightCost(now) ? this.#list[second] : this.#list[first]
    return b.cost(now) < a.cost(now) ? this.#list[second] : this.#list[first]
  }

  /** A candidate by weight, a warming one kept with the probability of its warmth (bounded: the fourth draw stands). */
  #draw (loads: readonly UpstreamLoad[], now: number): number {
    let i = this.#table.draw(this.#random)
    for (let tries = 1; tries < MAX_DRAWS; tries++) {
      const warmth = loads[i]!.warmth(now)
      if (warmth >= 1 || this.#random() < warmth) return i
      i = this.#table.draw(this.#random)
    }
    return i
  }
}
