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

/** Above this many schedule steps × instances we stop precomputing a weighted schedule. */
const MAX_SCHEDULE_WORK = 1 << 22

function index (random: () => number, n: number): number {
  // min() guards a random source that returns exactly 1.
  return Math.min(n - 1, Math.floor(random() * n))
}

class RoundRobin implements Balancer {
  readonly name: BalancerName
  readonly #list: readonly Instance[]
  #next: number

  constructor (list: readonly Instance[], random: () => number, name: BalancerName = 'round-robin') {
    this.name = name
    this.#list = list
    // A random starting point keeps a fleet of callers that saw the same snapshot from all starting on
    // the first instance at once.
    this.#next = list.length > 0 ? index(random, list.length) : 0
  }

  get size (): number {
    return this.#list.length
  }

  pick (): Instance | undefined {
    const list = this.#list
    if (list.length === 0) return undefined
    const i = this.#next
    this.#next = i + 1 === list.length ? 0 : i + 1
    return list[i]
  }
}

class RandomPick implements Balancer {
  readonly name = 'random' as const
  readonly #list: readonly Instance[]
  readonly #random: () => number

  constructor (list: readonly Instance[], random: () => number) {
    this.#list = list
    this.#random = random
  }

  get size (): number {
    return this.#list.length
  }

  pick (): Instance | undefined {
    const n = this.#list.length
    return n === 0 ? undefined : this.#list[index(this.#random, n)]
  }
}

function gcd (a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b]
  return a
}

/**
 * nginx's smooth weighted round-robin, run once over a whole period and stored: weights 5/1/1 give
 * a a b a c a a rather than a a a a a b c, and every period of `sum(weights) / gcd` picks holds each
 * instance exactly `weight / gcd` times.
 */
export function smoothSchedule (weights: readonly number[]): Uint32Array {
  const g = weights.reduce(gcd)
  const w = weights.map((x) => x / g)
  const total = w.reduce((a, b) => a + b, 0)
  const current = new Array<number>(w.length).fill(0)
  const schedule = new Uint32Array(total)
  for (let step = 0; step < total; step++) {
    let best = 0
    for (let i = 0; i < w.length; i++) {
      current[i]! += w[i]!
      if (current[i]! > current[best]!) best = i
    }
    current[best]! -= total
    schedule[step] = best
  }
  return schedule
}

class SmoothWeighted implements Balancer {
  readonly name = 'weighted' as const
  readonly #list: readonly Instance[]
  readonly #schedule: Uint32Array
  #next: number

  constructor (list: readonly Instance[], schedule: Uint32Array, random: () => number) {
    this.#list = list
    this.#schedule = schedule
    this.#next = index(random, schedule.length)
  }

  get size (): number {
    return this.#list.length
  }

  pick (): Instance | undefined {
    const i = this.#next
    this.#next = i + 1 === this.#schedule.length ? 0 : i + 1
    return this.#list[this.#schedule[i]!]
  }
}

/**
 * Vose's alias method: an index drawn by weight in O(1) from one random number. The fractional part
 * of `u × n` is the biased coin, so a single draw picks both the column and the side.
 */
class AliasTable {
  readonly #prob: Float64Array
  readonly #alias: Uint32Array

  constructor (weights: readonly number[]) {
    const n = weights.length
    const total = weights.reduce((sum, w) => sum + w, 0)
    const scaled = weights.map((w) => (w * n) / total)
    const prob = new Float64Array(n)
    const alias = new Uint32Array(n)
    const small: number[] = []
    const large: number[] = []
    scaled.forEach((p, i) => (p < 1 ? small : large).push(i))
    while (small.length > 0 && large.length > 0) {
      const s = small.pop()!
      const l = large.pop()!
      prob[s] = scaled[s]!
      alias[s] = l
      scaled[l] = scaled[l]! + scaled[s]! - 1
      ;(scaled[l]! < 1 ? small : large).push(l)
    }
    // Leftovers are 1 up to rounding error. Each round above returns one index to a list, so at
    // least one is left here.
    for (const i of [...large, ...small]) prob[i] = 1
    this.#prob = prob
    this.#alias = alias
  }

  draw (random: () => number): number {
    const n = this.#prob.length
    const u = random() * n
    const i = Math.min(n - 1, Math.floor(u))
    return u - i < this.#prob[i]! ? i : this.#alias[i]!
  }
}

/**
 * Weighted picks for snapshots whose exact schedule would be too large to precompute (many instances
 * with large, coprime weights). Shares follow the weights in expectation rather than exactly per period.
 */
class AliasWeighted implements Balancer {
  readonly name = 'weighted' as const
  readonly #list: readonly Instance[]
  readonly #table: AliasTable
  readonly #random: () => number

  constructor (list: readonly Instance[], random: () => number) {
    this.#list = list
    this.#table = new AliasTable(list.map((i) => i.weight))
    this.#random = random
  }

  get size (): number {
    return this.#list.length
  }

  pick (): Instance | undefined {
    return this.#list[this.#table.draw(this.#random)]
  }
}

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
class LeastRequest implements Balancer {
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
    if (second === first) second = (first + 1 + index(this.#random, n - 1)) % n
    const now = this.#now()
    return loads[second]!.cost(now) < loads[first]!.cost(now) ? this.#list[second] : this.#list[first]
  }
}

function weighted (list: readonly Instance[], random: () => number): Balancer {
  const first = list[0]
  // Equal weights (the common case, and the empty set) are plain round-robin.
  if (first === undefined || list.every((i) => i.weight === first.weight)) return new RoundRobin(list, random, 'weighted')
  const weights = list.map((i) => i.weight)
  const period = weights.reduce((a, b) => a + b, 0) / weights.reduce(gcd)
  if (period * list.length <= MAX_SCHEDULE_WORK) return new SmoothWeighted(list, smoothSchedule(weights), random)
  return new AliasWeighted(list, random)
}

/**
 * A balancer over one snapshot. Instances with weight 0 (critical, or warning with `Weights.Warning`
 * 0) are never picked, whatever the algorithm: Consul's DNS interface leaves them out too.
 */
export function createBalancer (name: BalancerName, instances: readonly Instance[], opts: BalancerOptions = {}): Balancer {
  const random = opts.random ?? Math.random
  const list = instances.every((i) => i.weight > 0) ? instances : instances.filter((i) => i.weight > 0)
  switch (name) {
    case 'random': return new RandomPick(list, random)
    case 'weighted': return weighted(list, random)
    case 'least-request': return new LeastRequest(list, random, opts.load, opts.now ?? (() => performance.now()))
    default: return new RoundRobin(list, random)
  }
}
