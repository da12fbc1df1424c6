import type { Instance } from '../watch/instance.js'
import { randomIndex, type Balancer } from './balancer.js'

export class RandomPick implements Balancer {
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
    return n === 0 ? undefined : this.#list[randomIndex(this.#random, n)]
  }
}
