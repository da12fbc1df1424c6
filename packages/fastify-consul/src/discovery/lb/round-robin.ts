import type { Instance } from '../watch/instance.js'
import { randomIndex, type Balancer, type BalancerName } from './balancer.js'

/** Each instance in turn, from a random start; 'weighted' uses it when every weight is equal. */
export class RoundRobin implements Balancer {
  readonly name: BalancerName
  readonly #list: readonly Instance[]
  #next: number

  constructor (list: readonly Instance[], random: () => number, name: BalancerName = 'round-robin') {
    this.name = name
    this.#list = list
    // A random starting point keeps a fleet of callers that saw the same snapshot from all starting on
    // the first instance at once.
    this.#next = list.length > 0 ? randomIndex(random, list.length) : 0
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
