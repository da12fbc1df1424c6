import type { ConsulHttp } from '../../consul/http.js'
import { WatchClosedError } from '../../errors.js'
import { fullJitter, type BackoffOptions } from '../../util/backoff.js'
import type { Logger } from '../../util/logger.js'
import { pause } from '../../util/pause.js'
import { datacenterFacts, failoverOrder, type FailoverSettings } from './failover-datacenters.js'
import { InstanceSet } from './instance-set.js'
import { zoneLevels } from './locality.js'
import { NO_ROUTE, prioritize, type Routing } from './routing.js'
import type { PriorityLevel, WatchListener, WatchQuery, WatchSource, WatchState } from './service-watch.js'

/** A shared watch of the same query in one datacenter, and how to let go of it. */
export interface AcquiredWatch {
  readonly watcher: WatchSource
  release (): Promise<void>
}

export interface PriorityWatcherOptions {
  http: ConsulHttp
  log: Logger
  /** The watch's own query (its `dc` is priority 0), with its locality. */
  query: WatchQuery
  failover: FailoverSettings
  panicThreshold: number
  /** Retry pacing while the datacenter list cannot be read. */
  backoff: BackoffOptions
  random: () => number
  /** The shared watcher of this query in `dc` (undefined: the agent's own); ref-counted by the registry. */
  acquire (dc: string | undefined): AcquiredWatch
}

interface Level extends AcquiredWatch {
  readonly dc: string | undefined
  readonly unsubscribe: () => void
}

/**
 * Failover across datacenters: one shared watcher per datacenter (the same blocking query with `?dc=`,
 * through the local agent), combined by priority. Each datacenter's watcher fails static on its own: a
 * remote datacenter that cannot be read keeps its last known instances, and its level reads 'stale'.
 * The watch is ready once its own datacenter answered and the failover list was checked against the
 * datacenters Consul knows; until the list is read, it routes in its own datacenter only.
 */
export class PriorityWatcher implements WatchSource {
  readonly query: WatchQuery
  readonly ready: Promise<void>
  readonly attempted: Promise<void>

  readonly #opts: PriorityWatcherOptions
  readonly #log: Logger
  readonly #abort = new AbortController()
  readonly #listeners = new Set<WatchListener>()
  readonly #levels: Level[] = []
  readonly #own: Level
  #current = InstanceSet.EMPTY
  #all = InstanceSet.EMPTY
  #fallback = InstanceSet.EMPTY
  #routing: Routing = NO_ROUTE
  #split = ''
  /** Set once the failover list is known: splits are logged from then on. */
  #resolved = false
  #closed = false
  #resolving: Promise<void> | undefined
  #resolveReady!: () => void
  #rejectReady!: (err: Error) => void
  #listChecked!: () => void
  #listRefused!: (err: Error) => void

  constructor (opts: PriorityWatcherOptions) {
    this.query = opts.query
    this.#opts = opts
    this.#log = opts.log.child({ watch: opts.query.service, failover: opts.failover.datacenters, nearest: opts.failover.nearest })
    this.ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve
      this.#rejectReady = reject
    })
    this.ready.catch(() => {})
    this.attempted = this.ready.then(() => {}, () => {})
    // The own datacenter is watched from the start: it is what the watch routes to until the list is known.
    this.#own = this.#add(opts.query.dc, true)
  }

  get current (): InstanceSet {
    return this.#current
  }

  get all (): InstanceSet {
    return this.#all
  }

  get fallback (): InstanceSet {
    return this.#fallback
  }

  /**
   * The own datacenter's: whether Consul is being read at all. Each level has its own in `priorities`.
   * Read through a handle, which answers 'closed' itself once closed.
   */
  get state (): WatchState {
    return this.#own.watcher.state
  }

  get panic (): boolean {
    return this.#routing.panic
  }

  get lastContact (): number | undefined {
    return this.#own.watcher.lastContact
  }

  get priorities (): readonly PriorityLevel[] {
    const locality = this.query.locality
    const out: PriorityLevel[] = []
    let i = 0
    for (const [n, level] of this.#levels.entries()) {
      const zones = n === 0 && locality !== undefined ? [locality.zone, undefined] : [undefined]
      for (const zone of zones) {
        // #recompute runs on every change of #levels, so the routing has one entry per level here.
        out.push({ datacenter: level.dc, zone, state: level.watcher.state, ...this.#routing.levels[i++]! })
      }
    }
    return out
  }

  subscribe (listener: WatchListener): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** Reads the failover list in the background (the own datacenter is watched already). The registry calls it once. */
  start (): void {
    const own = this.#own
    const listChecked = new Promise<void>((resolve, reject) => {
      this.#listChecked = resolve
      this.#listRefused = reject
    })
    Promise.all([own.watcher.ready, listChecked]).then(() => this.#resolveReady(), (err: Error) => this.#rejectReady(err))
    this.#resolving = this.#resolveList()
  }

  async stop (): Promise<void> {
    if (!this.#closed) {
      this.#closed = true
      this.#abort.abort()
      this.#rejectReady(new WatchClosedError(this.query.service))
      this.#emit((l) => l.state('closed'))
      this.#listeners.clear()
      for (const level of this.#levels) level.unsubscribe()
      await Promise.all([this.#resolving, ...this.#levels.map((l) => l.release())])
    }
    await this.#resolving
  }

  #add (dc: string | undefined, own: boolean): Level {
    const acquired = this.#opts.acquire(dc)
    const unsubscribe = acquired.watcher.subscribe({
      change: () => {},
      // Only the own datacenter's state is the watch's state; a remote one shows in `priorities`.
      state: (state) => { if (own && state !== 'closed') this.#emit((l) => l.state(state)) },
      panic: () => {},
      all: () => this.#recompute()
    })
    const level: Level = { dc, watcher: acquired.watcher, release: () => acquired.release(), unsubscribe }
    this.#levels.push(level)
    this.#recompute()
    return level
  }

  /** Reads the datacenter list until it succeeds; a name Consul does not know refuses `ready`. */
  async #resolveList (): Promise<void> {
    const signal = this.#abort.signal
    const { backoff, random } = this.#opts
    // One way out when stopped: a read with an aborted signal rejects at once, into the catch below.
    for (let failures = 0; ; failures++) {
      try {
        const facts = await datacenterFacts(this.#opts.http, signal)
        const order = failoverOrder(this.#opts.failover, facts, this.query.dc)
        const added = order.map((dc) => this.#add(dc, false))
        this.#log.info({ datacenters: [this.query.dc ?? facts.local, ...order] }, 'discovery failover: datacenters in priority order')
        this.#resolved = true
        this.#recompute()
        // Ready once every failover datacenter was asked once: a caller that awaits `ready` with no local
        // instance left must not fail while the next datacenter's answer is milliseconds away. A remote
        // datacenter that cannot be read does not hold it up (its first failure counts as asked).
        await Promise.all(added.map((l) => l.watcher.attempted))
        this.#listChecked()
        return
      } catch (err) {
        if (signal.aborted) return
        const code = (err as { code?: string }).code
        if (code === 'FST_REG_DISCOVERY_UNKNOWN_DATACENTER') {
          // A typo in the list: routing stays in the own datacenter, and `ready` says why.
          this.#log.error({ err }, 'discovery failover refused: unknown datacenter; routing in the own datacenter only')
          this.#listRefused(err as Error)
          return
        }
        if (failures === 0) this.#log.warn({ err, code }, 'discovery failover: cannot read the datacenters yet; retrying')
        else this.#log.debug({ err, code, failures }, 'discovery failover: datacenters still unreadable')
        await pause(fullJitter(failures, backoff, random), signal)
      }
    }
  }

  // Never after stop(): the levels are unsubscribed, and a list read after an abort adds none.
  #recompute (): void {
    const [own, ...others] = this.#levels as [Level, ...Level[]]
    const levels = [...zoneLevels(own.watcher.all.instances, this.query.locality), ...others.map((l) => l.watcher.all.instances)]
    const routing = prioritize(levels, this.query.passingOnly, this.#opts.panicThreshold)
    const wasPanic = this.#routing.panic
    this.#routing = routing
    const all = InstanceSet.from(levels.flat())
    const set = InstanceSet.from(routing.instances)
    const split = routing.levels.map((l) => l.load.toFixed(3)).join(' ')
    if (this.#resolved && split !== this.#split) {
      // One line per change of the split: the trace of a failover and of its return.
      this.#log.info({ split: this.priorities.map((p) => ({ datacenter: p.datacenter, zone: p.zone, load: Number(p.load.toFixed(3)), routable: p.routable, candidates: p.candidates })) }, 'discovery traffic split changed')
      this.#split = split
    }
    if (wasPanic !== routing.panic) {
      const detail = { routable: routing.routable, candidates: routing.candidates, panicThreshold: this.#opts.panicThreshold }
      if (routing.panic) this.#log.warn(detail, 'discovery panic: every datacenter is below its threshold; routing to every instance not in maintenance')
      else this.#log.warn(detail, 'discovery panic over: a datacenter is healthy enough; routing to healthy instances only')
      this.#emit((l) => l.panic(routing.panic))
    }
    if (!all.equals(this.#all)) {
      this.#all = all
      this.#emit((l) => l.all(all))
    }
    const fallback = InstanceSet.from(routing.fallback)
    const fallbackChanged = !fallback.equals(this.#fallback)
    this.#fallback = fallback
    if (!set.equals(this.#current) || fallbackChanged) {
      this.#current = set
      this.#emit((l) => l.change(set))
    }
  }

  #emit (call: (listener: WatchListener) => void): void {
    for (const listener of [...this.#listeners]) {
      try {
        call(listener)
      } catch (err) {
        this.#log.error({ err }, 'discovery listener threw')
      }
    }
  }
}
