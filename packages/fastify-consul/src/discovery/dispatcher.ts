import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import type { Logger } from '../util/logger.js'
import { Dispatcher, Pool, errors, util } from 'undici'
import { createBalancer, type Balancer, type BalancerName } from './balancer.js'
import { NoInstanceError, WatchClosedError } from '../errors.js'
import type { Instance } from './instance.js'
import { RetryBudget, RetryingHandler, isConnectFailure, type LegacyHandler, type RetryBudgetOptions, type RetryRoute } from './retry.js'
import type { ServiceWatch } from './watcher.js'

export interface DispatcherTuning {
  /** Extra attempts per request, each on an instance not tried yet. Default 2. */
  retries: number
  /** Load that retries may add; see RetryBudget. */
  retryBudget: RetryBudgetOptions
  /** How long an instance that refused a connection is skipped, in ms. 0 turns ejection off. Default 30 s. */
  ejectionMs: number
  /** Options for each upstream's undici Pool (connections, keep-alive, connect timeout, TLS…). */
  pool: Pool.Options
}

export interface ServiceDispatcherOptions extends DispatcherTuning {
  /** The watch that feeds the instances. The dispatcher owns it from now on and closes it in close(). */
  watch: ServiceWatch
  log: Logger
  balancer: BalancerName
  random: () => number
  /** Clock for the retry budget, in ms; `performance.now` by default. */
  now?: () => number
  /** Called once when the dispatcher starts closing (Discovery stops tracking it). */
  onClose?: () => void
}

export interface DispatcherStats {
  /** Requests dispatched (not attempts). */
  requests: number
  /** Extra attempts sent to another instance. */
  retries: number
  /** Retries that were allowed by method and error but refused by the retry budget. */
  retriesDenied: number
  ejections: number
  readmissions: number
}

interface Ejection {
  instance: Instance
  timer: NodeJS.Timeout
}

/**
 * Presents a handler written for undici's newer controller API (what `compose()`d interceptors pass
 * down) as the classic callbacks that the retrying handler and undici's Pool speak.
 */
class ControllerAdapter implements LegacyHandler, Dispatcher.DispatchController {
  readonly #handler: Dispatcher.DispatchHandler
  #abort: ((err?: Error) => void) | undefined
  #resume: (() => void) | undefined
  #paused = false
  #reason: Error | null = null
  rawHeaders: Buffer[] | string[] | null = null
  rawTrailers: Buffer[] | string[] | null = null

  constructor (handler: Dispatcher.DispatchHandler) {
    this.#handler = handler
  }

  get aborted (): boolean { return this.#reason !== null }
  get paused (): boolean { return this.#paused }
  get reason (): Error | null { return this.#reason }

  abort (reason: Error): void {
    if (this.#reason !== null) return
    this.#reason = reason
    this.#abort?.(reason)
  }

  pause (): void { this.#paused = true }

  resume (): void {
    if (!this.#paused) return
    this.#paused = false
    this.#resume?.()
  }

  onConnect (abort: (err?: Error) => void, context?: unknown): void {
    this.#abort = abort
    this.#handler.onRequestStart?.(this, context)
  }

  // undici's Client always passes arrays for raw headers and trailers (its own UnwrapHandler relies on it).
  onUpgrade (statusCode: number, headers: Buffer[] | string[] | null, socket: Duplex): void {
    this.rawHeaders = headers
    this.#handler.onRequestUpgrade?.(this, statusCode, util.parseHeaders(headers as Buffer[]), socket)
  }

  onHeaders (statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    this.#resume = resume
    this.rawHeaders = headers
    this.#handler.onResponseStart?.(this, statusCode, util.parseHeaders(headers), statusText)
    return !this.#paused
  }

  onData (chunk: Buffer): boolean {
    this.#handler.onResponseData?.(this, chunk)
    return !this.#paused
  }

  onComplete (trailers: string[] | Buffer[] | null): void {
    this.rawTrailers = trailers
    this.#handler.onResponseEnd?.(this, util.parseHeaders(trailers as Buffer[]))
  }

  onError (err: Error): void {
    this.#handler.onResponseError?.(this, err)
  }
}

export interface DispatcherEvents {
  /** An instance refused a connection and is skipped for `ejectionMs`. */
  eject: [instance: Instance]
  /** Its cool-down ended; it is picked again. */
  readmit: [instance: Instance]
}

/**
 * An undici Dispatcher for one service. The URL origin a caller passes is a placeholder: each request
 * goes to an instance picked from the live watch, through one keep-alive Pool per instance, and is
 * sent again to a different instance when the connection fails before any response. An instance
 * that refuses a connection is ejected (skipped) for `ejectionMs`, then re-admitted.
 */
export interface ServiceDispatcher extends Dispatcher {
  /** The Consul service name. */
  readonly service: string
  /** The watch's first answer; await it at startup to avoid NO_INSTANCE on the very first requests. */
  readonly ready: Promise<void>
  /** `eject` / `readmit`, kept apart from undici's own connection events. */
  readonly events: EventEmitter<DispatcherEvents>
  /** Counters since creation. */
  readonly stats: Readonly<DispatcherStats>
  /** The instances the watch currently serves, ejected ones included. */
  readonly instances: readonly Instance[]
  /** Instances currently skipped after a refused connection. */
  readonly ejected: readonly Instance[]
  /** Lets in-flight requests finish, then closes every upstream pool and releases the watch. */
  close (): Promise<void>
  close (callback: () => void): void
}

/** The ServiceDispatcher; its RetryRoute half is a private object, so none of it shows on the public type. */
export class BalancedDispatcher extends Dispatcher implements ServiceDispatcher {
  readonly service: string
  readonly ready: Promise<void>
  readonly events = new EventEmitter<DispatcherEvents>()

  readonly #watch: ServiceWatch
  readonly #log: Logger
  readonly #balancerName: BalancerName
  readonly #random: () => number
  readonly #ejectionMs: number
  readonly #poolOptions: Pool.Options
  readonly #onClose: (() => void) | undefined
  readonly #pools = new Map<string, Pool>()
  readonly #ejected = new Map<string, Ejection>()
  readonly #origins = new WeakMap<Instance, string>()
  readonly #stats: DispatcherStats = { requests: 0, retries: 0, retriesDenied: 0, ejections: 0, readmissions: 0 }
  #instances: readonly Instance[] = []
  #admitted: readonly Instance[] = []
  #balancer: Balancer
  #closed = false
  #closing: Promise<void> | undefined
  readonly #onChange = (instances: readonly Instance[]): void => this.#update(instances)
  readonly #route: RetryRoute

  constructor (opts: ServiceDispatcherOptions) {
    super()
    this.#watch = opts.watch
    this.service = opts.watch.service
    this.ready = opts.watch.ready
    this.#log = opts.log.child({ dispatcher: this.service })
    this.#balancerName = opts.balancer
    this.#random = opts.random
    this.#ejectionMs = opts.ejectionMs
    this.#poolOptions = opts.pool
    this.#onClose = opts.onClose
    this.#route = this.#makeRoute(opts.retries, new RetryBudget(opts.retryBudget, opts.now))
    this.#balancer = createBalancer(this.#balancerName, [], { random: this.#random })
    this.#watch.on('change', this.#onChange)
    this.#update(this.#watch.instances)
  }

  /** The instances the watch currently serves, ejected ones included. */
  get instances (): readonly Instance[] {
    return this.#instances
  }

  /** Instances currently skipped after a refused connection. */
  get ejected (): readonly Instance[] {
    return [...this.#ejected.values()].map((e) => e.instance)
  }

  get stats (): Readonly<DispatcherStats> {
    return { ...this.#stats }
  }

  get closed (): boolean {
    return this.#closed
  }

  override dispatch (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (handler === null || typeof handler !== 'object') throw new errors.InvalidArgumentError('handler must be an object')
    const caller: LegacyHandler = typeof handler.onRequestStart === 'function'
      ? new ControllerAdapter(handler)
      : handler as LegacyHandler
    if (this.#closed) {
      caller.onError(new WatchClosedError(this.service))
      return false
    }
    this.#stats.requests++
    new RetryingHandler(this.#route, opts, caller).start()
    // Each upstream Pool queues on its own; there is no shared backlog to signal 'drain' for.
    return true
  }

  // --- RetryRoute: what the retrying handler asks of us ---

  #makeRoute (maxRetries: number, budget: RetryBudget): RetryRoute {
    return {
      maxRetries,
      budget,
      choose: (tried) => this.#choose(tried),
      originOf: (instance) => this.#originOf(instance),
      send: (origin, opts, handler) => this.#send(origin, opts, handler),
      failed: (instance, err) => {
        this.#log.debug({ instance: instance.id, origin: this.#originOf(instance), code: (err as Error & { code?: string }).code }, 'upstream attempt failed')
        if (isConnectFailure(err)) this.#eject(instance)
      },
      retrying: (next) => {
        this.#stats.retries++
        this.#log.debug({ instance: next.id }, 'retrying on another instance')
      },
      denied: (err) => {
        this.#stats.retriesDenied++
        this.#log.debug({ code: (err as Error & { code?: string }).code }, 'retry budget exhausted')
      },
      noInstance: () => new NoInstanceError(this.service)
    }
  }

  #choose (tried: ReadonlySet<string>): Instance | undefined {
    const balancer = this.#balancer
    if (tried.size === 0) return balancer.pick()
    // A retry whose first attempt failed because we were closing: no new pools after close().
    if (this.#closed) return undefined
    // The balancer's order first, so retries spread like first attempts do…
    for (let i = 0; i < balancer.size; i++) {
      const candidate = balancer.pick()!
      if (!tried.has(this.#originOf(candidate))) return candidate
    }
    // …then a scan, for a random balancer that kept landing on instances already tried.
    return this.#admitted.find((i) => i.weight > 0 && !tried.has(this.#originOf(i)))
  }

  #originOf (instance: Instance): string {
    let origin = this.#origins.get(instance)
    if (origin === undefined) {
      origin = `http://${instance.host}:${instance.port}`
      this.#origins.set(instance, origin)
    }
    return origin
  }

  #send (origin: string, opts: Dispatcher.DispatchOptions, handler: LegacyHandler): void {
    let pool = this.#pools.get(origin)
    if (pool === undefined) {
      pool = new Pool(origin, this.#poolOptions)
      this.#pools.set(origin, pool)
    }
    pool.dispatch({ ...opts, origin }, handler as Dispatcher.DispatchHandler)
  }

  // --- instances, ejection ---

  #update (instances: readonly Instance[]): void {
    this.#instances = instances
    const live = new Set(instances.map((i) => this.#originOf(i)))
    for (const [origin, pool] of this.#pools) {
      if (live.has(origin)) continue
      this.#pools.delete(origin)
      // Graceful: requests already on this instance finish; queued ones fail with UND_ERR_CLOSED
      // and are retried elsewhere.
      pool.close().catch(/* c8 ignore next -- close() only rejects on a destroyed pool, which we never leave in the map */ () => {})
    }
    for (const [origin, ejection] of this.#ejected) {
      if (live.has(origin)) continue
      clearTimeout(ejection.timer)
      this.#ejected.delete(origin)
    }
    this.#rebalance()
  }

  #rebalance (): void {
    const admitted = this.#instances.filter((i) => !this.#ejected.has(this.#originOf(i)))
    // Panic mode, as Envoy does: with every instance ejected, trying them beats refusing every request.
    this.#admitted = admitted.length > 0 ? admitted : this.#instances
    this.#balancer = createBalancer(this.#balancerName, this.#admitted, { random: this.#random })
  }

  #eject (instance: Instance): void {
    const origin = this.#originOf(instance)
    if (this.#ejectionMs === 0 || this.#closed || this.#ejected.has(origin)) return
    // The instance may have left the set while the attempt was in flight.
    const current = this.#instances.find((i) => this.#originOf(i) === origin)
    if (current === undefined) return
    const timer = setTimeout(() => this.#readmit(origin), this.#ejectionMs)
    timer.unref()
    this.#ejected.set(origin, { instance: current, timer })
    this.#stats.ejections++
    this.#rebalance()
    this.#log.warn({ instance: current.id, origin, ejectionMs: this.#ejectionMs }, 'upstream refused a connection; ejected')
    this.events.emit('eject', current)
  }

  #readmit (origin: string): void {
    const ejection = this.#ejected.get(origin)!
    this.#ejected.delete(origin)
    this.#stats.readmissions++
    this.#rebalance()
    this.#log.info({ instance: ejection.instance.id, origin }, 'upstream re-admitted')
    this.events.emit('readmit', ejection.instance)
  }

  // --- lifecycle ---

  #shutdown (end: (pool: Pool) => Promise<void>): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true
      this.#watch.off('change', this.#onChange)
      for (const { timer } of this.#ejected.values()) clearTimeout(timer)
      this.#ejected.clear()
      const pools = [...this.#pools.values()]
      this.#pools.clear()
      this.#closing = Promise.all([this.#watch.close(), ...pools.map(end)]).then(() => {})
      this.#onClose?.()
    }
    return this.#closing
  }

  /** Lets in-flight requests finish, then closes every upstream pool and releases the watch. */
  override close (): Promise<void>
  override close (callback: () => void): void
  override close (callback?: () => void): Promise<void> | void {
    const done = this.#shutdown((pool) => pool.close())
    if (callback === undefined) return done
    done.then(callback, callback)
  }

  /** Aborts in-flight requests, closes every upstream pool and releases the watch. */
  override destroy (err: Error | null, callback: () => void): void
  override destroy (callback: () => void): void
  override destroy (err?: Error | null): Promise<void>
  override destroy (errOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    const cb = typeof errOrCallback === 'function' ? errOrCallback : callback
    const err = typeof errOrCallback === 'function' ? null : errOrCallback ?? null
    const done = this.#shutdown((pool) => pool.destroy(err))
    if (cb === undefined) return done
    done.then(cb, cb)
  }
}
