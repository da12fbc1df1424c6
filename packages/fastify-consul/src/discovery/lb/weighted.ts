import type { Instance } from '../watch/instance.js'
import { randomIndex, type Balancer } from './balancer.js'
import { RoundRobin } from './round-robin.js'

/** Above this many schedule steps × instances we stop precomputing a weighted schedule. */
const MAX_SCHEDULE_WORK = 1 << 22

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
    this.#next = randomIndex(random, schedule.length)
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
export class AliasTable {
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

export function weighted (list: readonly Instance[], random: () => number): Balancer {
  const first = list[0]
  // Equal weights (the common case, and the empty set) are plain round-robin.
  if (first === undefined || list.every((i) => i.weight === first.weight)) return new RoundRobin(list, random, 'weighted')
  const weights = list.map((i) => i.weight)
  const period = weights.reduce((a, b) => a + b, 0) / weights.reduce(gcd)
  if (period * list.length <= MAX_SCHEDULE_WORK) return new SmoothWeighted(list, smoothSchedule(weights), random)
  return new AliasWeighted(list, random)
}
