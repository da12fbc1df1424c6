import type { Logger } from '../../util/logger.js'
import type { Instance } from '../watch/instance.js'
import { originOf } from './instance-origin.js'

/**
 * Leaves out the instances registered at this process's own listening address: routing to one would
 * be a forwarding loop (a gateway that finds itself among the replicas it fronts). Each is logged
 * once while it stays in the set, not on every change.
 */
export class SelfExclusion {
  readonly #log: Logger
  #isSelf: (origin: string) => boolean
  /** Origins left out at the last change. */
  #seen = new Set<string>()

  constructor (log: Logger, isSelf: (origin: string) => boolean = () => false) {
    this.#log = log
    this.#isSelf = isSelf
  }

  /** Our own listening origins became known (after listen). */
  set (isSelf: (origin: string) => boolean): void {
    this.#isSelf = isSelf
  }

  /** `instances` without ours; the same array when none is ours. */
  apply (instances: readonly Instance[]): readonly Instance[] {
    const self = instances.filter((i) => this.#isSelf(originOf(i)))
    if (self.length === 0 && this.#seen.size === 0) return instances
    const seen = new Set<string>()
    for (const i of self) {
      const origin = originOf(i)
      seen.add(origin)
      if (!this.#seen.has(origin)) this.#log.warn({ instance: i.id, origin }, 'instance is registered at this process\'s own address; never routed to (it would be a forwarding loop)')
    }
    this.#seen = seen
    return self.length === 0 ? instances : instances.filter((i) => !seen.has(originOf(i)))
  }
}
