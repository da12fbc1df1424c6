import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import type { Logger } from '../../util/logger.js'
import { Dispatcher, Pool, errors, util } from 'undici'
import { createBalancer, type Balancer, type BalancerName } from '../lb/balancer.js'
import { NoInstanceError, WatchClosedError } from '../../errors.js'
import type { Instance } from '../watch/instance.js'
import type { FailureKind } from './failure.js'
import { OutlierState, mayEject, type EjectionTimes } from './outlier.js'
import { RetryBudget, RetryingHandler, type LegacyHandler, type RequestOutcome, type RetryBudgetOptions, type RetryRoute } from './retry.js'
import { UpstreamLoad } from '../lb/upstream-load.js'
import type { ServiceWatch } from '../watch/watcher.js'
import { httpOrigin, urlHost } from '../../consul/address.js'

export interface DispatcherTuning {
  /** Extra attempts per request, each on an instance not tried yet. Default 2. */
  retries: number
  /** Load that retries may add; see RetryBudget. */
  retryBudget: RetryBudgetOptions
  /** How long an instance is skipped the first time it is ejected, in ms. 0 turns ejection off. Default 30 s. */
  ejectionMs: number
  /** The longest ejection (each one lasts ejectionMs × the instance's recent ejections, up to this), in ms. */
  maxEjectionMs: number
  /** Failures in a row (timeouts, resets, 5xx to idempotent requests) that eject an instance. */
  consecutiveFailures: number
  /** The largest share of the routable instances that may be ejected at once, in percent. */
  maxEjectionPercent: number
  /** Statuses on which an idempotent request is sent to another instance instead of answered. */
  retryOn: readonly number[]
  /** How long an idempotent request's attempt may wait for response headers before it is retried elsewhere, in ms; 0 for no limit. */
  perTryTimeout: number
  /** Options for each upstream's undici Pool (connections, keep-alive, connect timeout, TLS…). */
  pool: Pool.Options
}

export interface ServiceDispatcherOptions extends DispatcherTuning {
  /** The watch that feeds the instances. The dispatcher owns it from now on and closes it in close(). */
  watch: ServiceWatch
  log: Logger
  balancer: BalancerName
  random: () => number
  /** Milliseconds clock for the retry budget, the latency estimates and ejection lengths; `performance.now` by default. */
  now?: () => number
  /** Called once when the dispatcher starts closing (Discovery stops tracking it). */
  onClose?: () => void
  /** Origins that are this process itself (see selfMatcher): never routed to. Default: none. */
  isSelf?: (origin: string) => boolean
}

export interface DispatcherStats {
  /** Requests dispatched (not attempts). */
  requests: number
  /** Extra attempts sent to another instance, whatever the cause. */
  retries: number
  /** Of those, retries because an idempotent request got a `retryOn` status. */
  statusRetries: number
  /** Retries that were allowed by method and error but refused by the retry budget. */
  retriesDenied: number
  /** Attempts cut short by `perTryTimeout`. */
  perTryTimeouts: number
  /** Instances ejected, for any reason. */
  ejections: number
  /** Of those, ejections after `consecutiveFailures` failures in a row (the rest refused a connection). */
  outlierEjections: number
  /** Ejections not made because `maxEjectionPercent` of the instances were out already. */
  ejectionsCapped: number
  /** Ejected instances back in rotation, after their ejection time or after a success. */
  readmissions: number
}

interface Ejection {
  instance: Instance
  timer: NodeJS.Timeout
}

/** What the dispatcher knows about one upstream beyond Consul's view: live load and failure record. */
interface Upstream {
  readonly load: UpstreamLoad
  readonly outlier: OutlierState
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
  /** An instance is skipped for `ms`: it refused a connection (`connect`), or failed `consecutiveFailures` times in a row (the last failure's kind). */
  eject: [instance: Instance, ejection: { reason: FailureKind, ms: number }]
  /** It is picked again: its ejection time ended, or a request still in flight on it succeeded. */
  readmit: [instance: Instance, reason: 'time' | 'success']
  /**
   * A request is over for the caller (for metrics and live views): the instance of its last attempt
   * (undefined when none could be picked), how it ended, how long it took in ms, and its retries.
   * Emitted only while someone listens; a listener runs on every request, so keep it cheap.
   */
  request: [instance: Instance | undefined, outcome: RequestOutcome, durationMs: number, retries: number]
}

/**
 * An undici Dispatcher for one service. The URL origin a caller passes is a placeholder: each request
 * goes to an instance picked from the live watch, through one keep-alive Pool per instance, and is
 * sent again to a different instance when the connection fails before any response (and, for
 * idempotent requests, after `perTryTimeout` or on a `retryOn` status). Outlier detection: an instance
 * that refuses a connection, or fails `consecutiveFailures` times in a row, is ejected (skipped) for a
 * time that grows with each ejection, never more than `maxEjectionPercent` of the instances at once,
 * and re-admitted when the time is up or when a request still in flight on it succeeds.
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
  /** Instances currently ejected by outlier detection. */
  readonly ejected: readonly Instance[]
  /** Attempts in flight on `instance` right now (what least-request weighs); 0 for an instance it does not know. */
  outstanding (instance: Instance): number
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
  readonly #now: () => number
  readonly #ejection: EjectionTimes
  readonly #consecutiveFailures: number
  readonly #maxEjectionPercent: number
  readonly #poolOptions: Pool.Options
  readonly #onClose: (() => void) | undefined
  #isSelf: (origin: string) => boolean
  /** Origins of instances left out as our own address, so each is logged once while it stays. */
  #selfSeen = new Set<string>()
  readonly #pools = new Map<string, Pool>()
  readonly #upstreams = new Map<string, Upstream>()
  readonly #ejected = new Map<string, Ejection>()
  readonly #origins = new WeakMap<Instance, string>()
  readonly #stats: DispatcherStats = {
    requests: 0,
    retries: 0,
    statusRetries: 0,
    retriesDenied: 0,
    perTryTimeouts: 0,
    ejections: 0,
    outlierEjections: 0,
    ejectionsCapped: 0,
    readmissions: 0
  }

  #instances: readonly Instance[] = []
  /** What may be routed to: the watch's instances less our own address. */
  #routed: readonly Instance[] = []
  /** The current instances by origin, and how many of them can be picked at all (weight > 0). */
  #live = new Map<string, Instance>()
  #routable = 0
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
    this.#now = opts.now ?? (() => performance.now())
    this.#ejection = { baseMs: opts.ejectionMs, maxMs: opts.maxEjectionMs }
    this.#consecutiveFailures = opts.consecutiveFailures
    this.#maxEjectionPercent = opts.maxEjectionPercent
    this.#poolOptions = opts.pool
    this.#onClose = opts.onClose
    this.#isSelf = opts.isSelf ?? (() => false)
    this.#route = this.#makeRoute(opts, new RetryBudget(opts.retryBudget, this.#now))
    this.#balancer = this.#balance([])
    this.#watch.on('change', this.#onChange)
    this.#update(this.#watch.instances)
  }

  /** The instances the watch currently serves, ejected ones included. */
  get instances (): readonly Instance[] {
    return this.#instances
  }

  /** Instances currently ejected by outlier detection. */
  get ejected (): readonly Instance[] {
    return [...this.#ejected.values()].map((e) => e.instance)
  }

  get stats (): Readonly<DispatcherStats> {
    return { ...this.#stats }
  }

  outstanding (instance: Instance): number {
    return this.#upstreams.get(this.#originOf(instance))?.load.outstanding ?? 0
  }

  get closed (): boolean {
    return this.#closed
  }

  /** Our own listening origins became known (after listen): instances at them are dropped from routing. */
  setSelf (isSelf: (origin: string) => boolean): void {
    this.#isSelf = isSelf
    if (!this.#closed) this.#update(this.#instances)
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

  #makeRoute (opts: DispatcherTuning, budget: RetryBudget): RetryRoute {
    return {
      maxRetries: opts.retries,
      budget,
      retryOn: new Set(opts.retryOn),
      perTryTimeout: opts.perTryTimeout,
      now: this.#now,
      choose: (tried) => this.#choose(tried),
      originOf: (instance) => this.#originOf(instance),
      loadOf: (instance) => this.#upstream(this.#originOf(instance)).load,
      send: (origin, opts, handler) => this.#send(origin, opts, handler),
      succeeded: (instance) => this.#succeeded(instance),
      failed: (instance, kind, err) => {
        this.#log.debug({ instance: instance.id, origin: this.#originOf(instance), kind, code: (err as Error & { code?: string } | undefined)?.code }, 'upstream attempt failed')
        this.#failed(instance, kind)
      },
      timedOut: (instance) => {
        this.#stats.perTryTimeouts++
        this.#log.debug({ instance: instance.id, perTryTimeout: opts.perTryTimeout }, 'per-try timeout')
      },
      retrying: (next, cause) => {
        this.#stats.retries++
        if (cause === 'status') this.#stats.statusRetries++
        this.#log.debug({ instance: next.id, cause }, 'retrying on another instance')
      },
      ended: (instance, outcome, durationMs, retries) => {
        // One lookup per request when nobody listens: no arguments array, no event object.
        if (this.events.listenerCount('request') > 0) this.events.emit('request', instance, outcome, durationMs, retries)
      },
      denied: (reason) => {
        this.#stats.retriesDenied++
        this.#log.debug({ reason }, 'retry budget exhausted')
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
    // …then a scan, for a random balancer that kept landing on instances already tried; ejected
    // instances last, because trying one beats failing the request (a success re-admits it).
    const untried = (i: Instance): boolean => i.weight > 0 && !tried.has(this.#originOf(i))
    return this.#admitted.find(untried) ?? this.#routed.find(untried)
  }

  #originOf (instance: Instance): string {
    let origin = this.#origins.get(instance)
    if (origin === undefined) {
      // Parsing left out instances without an origin; one built by hand that has none still gets a
      // string, and its pool fails to build: a failed attempt, not a crash (RetryingHandler#send).
      const dialable = httpOrigin(instance.address, instance.port)
      origin = 'origin' in dialable ? dialable.origin : `http://${urlHost(instance.address)}:${instance.port}`
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

  #upstream (origin: string): Upstream {
    let upstream = this.#upstreams.get(origin)
    if (upstream === undefined) {
      upstream = { load: new UpstreamLoad(), outlier: new OutlierState() }
      this.#upstreams.set(origin, upstream)
    }
    return upstream
  }

  #update (instances: readonly Instance[]): void {
    this.#instances = instances
    this.#routed = this.#withoutSelf(instances)
    this.#live = new Map(this.#routed.map((i) => [this.#originOf(i), i]))
    this.#routable = this.#routed.filter((i) => i.weight > 0).length
    const live = this.#live
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
    // Attempts still in flight on a departed instance keep their own reference to its load.
    for (const origin of this.#upstreams.keys()) if (!live.has(origin)) this.#upstreams.delete(origin)
    this.#rebalance()
  }

  #withoutSelf (instances: readonly Instance[]): readonly Instance[] {
    const self = instances.filter((i) => this.#isSelf(this.#originOf(i)))
    if (self.length === 0 && this.#selfSeen.size === 0) return instances
    const seen = new Set<string>()
    for (const i of self) {
      const origin = this.#originOf(i)
      seen.add(origin)
      if (!this.#selfSeen.has(origin)) this.#log.warn({ instance: i.id, origin }, 'instance is registered at this process\'s own address; never routed to (it would be a forwarding loop)')
    }
    this.#selfSeen = seen
    return self.length === 0 ? instances : instances.filter((i) => !seen.has(this.#originOf(i)))
  }

  #balance (instances: readonly Instance[]): Balancer {
    return createBalancer(this.#balancerName, instances, { random: this.#random, load: (i) => this.#upstream(this.#originOf(i)).load, now: this.#now })
  }

  #rebalance (): void {
    const admitted = this.#routed.filter((i) => !this.#ejected.has(this.#originOf(i)))
    // Envoy's panic mode: with every instance ejected (a pool of one, or maxEjectionPercent 100),
    // trying them beats refusing every request.
    this.#admitted = admitted.some((i) => i.weight > 0) ? admitted : this.#routed
    this.#balancer = this.#balance(this.#admitted)
  }

  #succeeded (instance: Instance): void {
    const origin = this.#originOf(instance)
    // An instance that left the set while the attempt was in flight has no record any more.
    const upstream = this.#upstreams.get(origin)
    if (upstream === undefined) return
    upstream.outlier.succeed()
    if (this.#ejected.has(origin)) this.#readmit(origin, 'success')
  }

  #failed (instance: Instance, kind: FailureKind): void {
    const origin = this.#originOf(instance)
    // Ejection off, closing, already out, or no longer in the set: nothing to decide.
    if (this.#ejection.baseMs === 0 || this.#closed || this.#ejected.has(origin)) return
    const current = this.#live.get(origin)
    if (current === undefined) return
    const upstream = this.#upstream(origin)
    if (!upstream.outlier.fail(kind, this.#consecutiveFailures)) return
    if (!mayEject(this.#ejected.size, this.#routable, this.#maxEjectionPercent)) {
      this.#stats.ejectionsCapped++
      this.#log.debug({ instance: current.id, origin, ejected: this.#ejected.size, maxEjectionPercent: this.#maxEjectionPercent }, 'outlier kept: too many instances ejected already')
      return
    }
    const ms = upstream.outlier.eject(this.#now(), this.#ejection)
    const timer = setTimeout(() => this.#readmit(origin, 'time'), ms)
    timer.unref()
    this.#ejected.set(origin, { instance: current, timer })
    this.#stats.ejections++
    if (kind !== 'connect') this.#stats.outlierEjections++
    this.#rebalance()
    if (kind === 'connect') this.#log.warn({ instance: current.id, origin, ejectionMs: ms }, 'upstream refused a connection; ejected')
    else this.#log.warn({ instance: current.id, origin, ejectionMs: ms, kind, failures: this.#consecutiveFailures }, 'upstream failed repeatedly; ejected')
    this.events.emit('eject', current, { reason: kind, ms })
  }

  #readmit (origin: string, reason: 'time' | 'success'): void {
    const ejection = this.#ejected.get(origin)!
    clearTimeout(ejection.timer)
    this.#ejected.delete(origin)
    this.#upstreams.get(origin)!.outlier.readmit(this.#now())
    this.#stats.readmissions++
    this.#rebalance()
    this.#log.info({ instance: ejection.instance.id, origin, reason }, 'upstream re-admitted')
    this.events.emit('readmit', ejection.instance, reason)
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
