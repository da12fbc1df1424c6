import { NoInstanceError, WatchClosedError } from '../errors.js'
import { createBalancer, type Balancer, type BalancerName } from './balancer.js'
import type { Instance } from './instance.js'
import type { InstanceSet } from './instance-set.js'
import type { ServiceWatch, Watcher, WatchState } from './watcher.js'

type ChangeListener = (instances: readonly Instance[]) => void
type StateListener = (state: WatchState) => void

/** One holder's view of a shared watcher: its own balancer, listeners and close(). */
export class WatchHandle implements ServiceWatch {
  readonly service: string
  readonly ready: Promise<void>
  readonly #watcher: Watcher
  readonly #balancerName: BalancerName
  readonly #random: () => number
  readonly #release: () => Promise<void>
  readonly #unsubscribe: () => void
  readonly #onChange = new Set<ChangeListener>()
  readonly #onState = new Set<StateListener>()
  #balancer: Balancer | undefined
  #balanced: InstanceSet | undefined
  #rejectReady!: (err: Error) => void
  #closing: Promise<void> | undefined

  constructor (watcher: Watcher, balancer: BalancerName, random: () => number, release: () => Promise<void>) {
    this.service = watcher.query.service
    this.#watcher = watcher
    this.#balancerName = balancer
    this.#random = random
    this.#release = release
    this.ready = new Promise<void>((resolve, reject) => {
      this.#rejectReady = reject
      watcher.ready.then(resolve, reject)
    })
    // A holder that never awaits `ready` must not see an unhandled rejection when it closes early.
    this.ready.catch(() => {})
    this.#unsubscribe = watcher.subscribe({
      change: (set) => { for (const fn of [...this.#onChange]) fn(set.instances) },
      state: (state) => { for (const fn of [...this.#onState]) fn(state) }
    })
  }

  get instances (): readonly Instance[] {
    return this.#closing === undefined ? this.#watcher.current.instances : []
  }

  get state (): WatchState {
    return this.#closing === undefined ? this.#watcher.state : 'closed'
  }

  pick (): Instance {
    if (this.#closing !== undefined) throw new WatchClosedError(this.service)
    const set = this.#watcher.current
    // One identity check per pick; the balancer is rebuilt only when the snapshot changed.
    if (set !== this.#balanced) {
      this.#balancer = createBalancer(this.#balancerName, set.instances, { random: this.#random })
      this.#balanced = set
    }
    const instance = this.#balancer!.pick()
    if (instance === undefined) throw new NoInstanceError(this.service)
    return instance
  }

  on (event: 'change', listener: ChangeListener): this
  on (event: 'state', listener: StateListener): this
  on (event: 'change' | 'state', listener: ChangeListener | StateListener): this {
    if (event === 'change') this.#onChange.add(listener as ChangeListener)
    else this.#onState.add(listener as StateListener)
    return this
  }

  off (event: 'change', listener: ChangeListener): this
  off (event: 'state', listener: StateListener): this
  off (event: 'change' | 'state', listener: ChangeListener | StateListener): this {
    if (event === 'change') this.#onChange.delete(listener as ChangeListener)
    else this.#onState.delete(listener as StateListener)
    return this
  }

  close (): Promise<void> {
    if (this.#closing === undefined) {
      this.#unsubscribe()
      this.#rejectReady(new WatchClosedError(this.service))
      for (const fn of [...this.#onState]) fn('closed')
      this.#onChange.clear()
      this.#onState.clear()
      this.#closing = this.#release()
    }
    return this.#closing
  }
}
