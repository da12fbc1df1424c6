import { NoInstanceError, NotReadyError, WatchClosedError } from '../errors.js'
import type { Balancer } from './lb/balancer.js'
import { createBalancer } from './lb/create-balancer.js'
import type { BalancerSettings } from './options.js'
import type { Instance } from './watch/instance.js'
import type { InstanceSet } from './watch/instance-set.js'
import type { PriorityLevel, ServiceWatch, WatchSource, WatchState } from './watch/service-watch.js'

interface Listeners {
  change: (instances: readonly Instance[]) => void
  state: (state: WatchState) => void
  panic: (panic: boolean) => void
}
type WatchEvent = keyof Listeners

/** One holder's view of a shared watcher: its own balancer, listeners and close(). */
export class WatchHandle implements ServiceWatch {
  readonly service: string
  readonly ready: Promise<void>
  readonly #watcher: WatchSource
  readonly #picking: BalancerSettings
  readonly #release: () => Promise<void>
  readonly #unsubscribe: () => void
  readonly #listeners: { [E in WatchEvent]: Set<Listeners[E]> } = { change: new Set(), state: new Set(), panic: new Set() }
  #balancer: Balancer | undefined
  #balanced: InstanceSet | undefined
  #rejectReady!: (err: Error) => void
  #readyTimer: NodeJS.Timeout | undefined
  #closing: Promise<void> | undefined

  constructor (watcher: WatchSource, picking: BalancerSettings, readyTimeout: number | undefined, release: () => Promise<void>) {
    this.service = watcher.query.service
    this.#watcher = watcher
    this.#picking = picking
    this.#release = release
    this.ready = new Promise<void>((resolve, reject) => {
      this.#rejectReady = reject
      // readyTimeout bounds only this promise: the watch keeps trying, and its first answer still lands.
      // Not unref'd: a startup that awaits ready has nothing else keeping the process alive.
      this.#readyTimer = readyTimeout === undefined ? undefined : setTimeout(() => reject(new NotReadyError(this.service, readyTimeout)), readyTimeout)
      watcher.ready.then(resolve, reject).finally(() => clearTimeout(this.#readyTimer))
    })
    // A holder that never awaits `ready` must not see an unhandled rejection when it closes early.
    this.ready.catch(() => {})
    this.#unsubscribe = watcher.subscribe({
      change: (set) => { for (const fn of [...this.#listeners.change]) fn(set.instances) },
      state: (state) => { for (const fn of [...this.#listeners.state]) fn(state) },
      panic: (panic) => { for (const fn of [...this.#listeners.panic]) fn(panic) },
      // `all` feeds failover watches; a holder sees its effect through `change`.
      all: () => {}
    })
  }

  get instances (): readonly Instance[] {
    return this.#closing === undefined ? this.#watcher.current.instances : []
  }

  get all (): readonly Instance[] {
    return this.#closing === undefined ? this.#watcher.all.instances : []
  }

  get fallback (): readonly Instance[] {
    return this.#closing === undefined ? this.#watcher.fallback.instances : []
  }

  get state (): WatchState {
    return this.#closing === undefined ? this.#watcher.state : 'closed'
  }

  get panic (): boolean {
    return this.#closing === undefined && this.#watcher.panic
  }

  get priorities (): readonly PriorityLevel[] {
    return this.#closing === undefined ? this.#watcher.priorities : []
  }

  get lastContact (): number | undefined {
    return this.#watcher.lastContact
  }

  pick (): Instance {
    if (this.#closing !== undefined) throw new WatchClosedError(this.service)
    const set = this.#watcher.current
    // One identity check per pick; the balancer is built on the first pick (a dispatcher's own handle
    // never picks) and rebuilt only when the snapshot changed.
    if (set !== this.#balanced) {
      this.#balancer = createBalancer(this.#picking.balancer, set.instances, { random: this.#picking.random })
      this.#balanced = set
    }
    const instance = this.#balancer!.pick()
    if (instance === undefined) throw new NoInstanceError(this.service)
    return instance
  }

  on<E extends WatchEvent> (event: E, listener: Listeners[E]): this {
    this.#listeners[event].add(listener)
    return this
  }

  off<E extends WatchEvent> (event: E, listener: Listeners[E]): this {
    this.#listeners[event].delete(listener)
    return this
  }

  close (): Promise<void> {
    if (this.#closing === undefined) {
      this.#unsubscribe()
      clearTimeout(this.#readyTimer)
      this.#rejectReady(new WatchClosedError(this.service))
      for (const fn of [...this.#listeners.state]) fn('closed')
      for (const set of Object.values(this.#listeners)) set.clear()
      this.#closing = this.#release()
    }
    return this.#closing
  }
}
