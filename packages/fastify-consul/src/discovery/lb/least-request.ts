import type { Instance } from '../watch/instance.js'
import { randomIndex, type Balancer, type BalancerOptions } from './balancer.js'
import type { UpstreamLoad } from './upstream-load.js'
import { AliasTable } from './weighted.js'

/**
 * Power of two choices over live load (Finagle's and Linkerd's P2C with peak EWMA): two distinct
 * candidates drawn by Consul weight, and the one with the lower cost, latency × (outstanding + 1),
 * wins; on a tie the first. Weight steers who is considered, load decides between the two, so a
 * warning instance at weight 1 among passing ones at 10 is rarely a candidate, and a replica that
 * froze stops winning as soon as its requests pile up.
 *
 * Without loads (a plain watch's pick(), which has no view of what is in flight) the first candidate
 * always wins: a weighted random pick.
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
    const first = this.#table.draw(this.#random)
    const loads = this.#loads
    if (loads === undefined || n === 1) return this.#list[first]
    let second = this.#table.draw(this.#random)
    // Two draws of the same instance would be no choice at all: take another one, uniformly.
    if (second === first) second = (first + 1 + randomIndex(this.#random, n - 1)) % n
    const now = this.#now()
    return loads[second]!.cost(now) < loads[first]!.cost(now) ? this.#list[second] : this.#list[first]
  }
}
