import { EventEmitter } from 'node:events'
import type { Logger } from '../../util/logger.js'
import { Dispatcher, errors, type Pool } from 'undici'
import { randomIndex, type Balancer, type BalancerName } from '../lb/balancer.js'
import { createBalancer } from '../lb/create-balancer.js'
import { ConnectIdentityRequiredError, DeadlineExceededError, NoInstanceError, WatchClosedError } from '../../errors.js'
import { connectPoolOptions } from './connect-dialing.js'
import { HedgeDelay } from './hedge-delay.js'
import { RetryThrottle } from './retry-throttle.js'
import { SelfExclusion } from './self-exclusion.js'
import { dispatchFailed } from './failure.js'
import type { Instance } from '../watch/instance.js'
import { originOf } from './instance-origin.js'
import { OutlierDetector } from './outlier-detector.js'
import { RetryingHandler, type RetryRoute, type Target } from './retry.js'
import { RetryBudget } from './retry-policy.js'
import type { DispatcherEvents, DispatcherStats, DispatcherTuning, ServiceDispatcher, ServiceDispatcherOptions } from './service-dispatcher.js'
import { legacyHandler } from './undici-handler.js'
import { UpstreamPools } from './upstream-pools.js'
import type { ServiceWatch } from '../watch/service-watch.js'

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
  readonly #onClose: (() => void) | undefined
  readonly #self: SelfExclusion
  readonly #pools: UpstreamPools
  readonly #outliers: OutlierDetector
  /** This app has a Connect identity: Connect-native instances are dialed with it, else never routed to. */
  readonly #dialsNative: boolean
  #nativeLeftOut = false
  readonly #stats: DispatcherStats = {
    requests: 0,
    retries: 0,
    statusRetries: 0,
    retriesDenied: 0,
    perTryTimeouts: 0,
    ejections: 0,
    outlierEjections: 0,
    ejectionsCapped: 0,
    readmissions: 0,
    probes: 0,
    probeFailures: 0,
    hedges: 0,
    hedgesWon: 0,
    deadlinesExceeded: 0
  }

  #instances: readonly Instance[] = []
  /** What may be routed to: the watch's instances less our own address. */
  #routed: readonly Instance[] = []
  /** The current instances by origin, and how many of them can be picked at all (weight > 0). */
  #live = new Map<string, Instance>()
  #routable = 0
  /** The watch's fallback level less our own address: a request's last try goes there (see #choose). */
  #fallback: readonly Instance[] = []
  #admitted: readonly Instance[] = []
  #balancer: Balancer
  #closed = false
  #closing: Promise<void> | undefined
  readonly #onChange = (instances: readonly Instance[]): void => this.#update(instances)
  readonly #route: RetryRoute
  /** Retries a request may make: the try after the last of them is the one that may spill to the fallback. */
  readonly #retries: number

  constructor (opts: ServiceDispatcherOptions) {
    super()
    this.#watch = opts.watch
    this.service = opts.watch.service
    this.ready = opts.watch.ready
    this.#log = opts.log.child({ dispatcher: this.service })
    this.#balancerName = opts.balancer
    this.#random = opts.random
    this.#now = opts.now ?? (() => performance.now())
    this.#onClose = opts.onClose
    this.#self = new SelfExclusion(this.#log, opts.isSelf)
    this.#dialsNative = opts.connect !== undefined
    this.#pools = new UpstreamPools(opts.pool, opts.connect === undefined ? undefined : connectPoolOptions(opts.connect, this.service, opts.pool))
    this.#outliers = new OutlierDetector({
      ejection: { baseMs: opts.ejectionMs, maxMs: opts.maxEjectionMs },
      consecutiveFailures: opts.consecutiveFailures,
      maxEjectionPercent: opts.maxEjectionPercent,
      slowStartMs: opts.slowStartMs,
      now: this.#now,
      log: this.#log,
      stats: this.#stats,
      ejected: (instance, ejection) => this.events.emit('eject', instance, ejection),
      readmitted: (instance, reason, ejectedMs) => this.events.emit('readmit', instance, reason, ejectedMs),
      probeFailed: (instance, ms) => this.events.emit('probe', instance, { passed: false, ms }),
      onChange: () => this.#rebalance()
    })
    this.#retries = opts.retries
    this.#route = this.#makeRoute(opts, new RetryBudget(opts.retryBudget, this.#now))
    this.#balancer = this.#balance([])
    this.#watch.on('change', this.#onChange)
    this.#update(this.#watch.instances)
  }

  get watch (): ServiceWatch {
    return this.#watch
  }

  /** The instances the watch currently serves, ejected ones included. */
  get instances (): readonly Instance[] {
    return this.#instances
  }

  /** Instances currently ejected by outlier detection. */
  get ejected (): readonly Instance[] {
    return this.#outliers.ejected
  }

  get stats (): Readonly<DispatcherStats> {
    return { ...this.#stats }
  }

  outstanding (instance: Instance): number {
    return this.#outliers.outstanding(originOf(instance))
  }

  get closed (): boolean {
    return this.#closed
  }

  /** Our own listening origins became known (after listen): instances at them are dropped from routing. */
  setSelf (isSelf: (origin: string) => boolean): void {
    this.#self.set(isSelf)
    if (!this.#closed) this.#update(this.#instances)
  }

  override dispatch (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (handler === null || typeof handler !== 'object') throw new errors.InvalidArgumentError('handler must be an object')
    const caller = legacyHandler(handler)
    if (this.#closed) {
      caller.onError(new WatchClosedError(this.service))
      return false
    }
    this.#stats.requests++
    new RetryingHandler(this.#route, opts, caller).start()
    // Each upstream Pool queues on its own; there is no shared backlog to signal 'drain' for.
    return true
  }

  // The retrying handler's narrow view of us: choose a target, send to it, report what happened.
  #makeRoute (opts: DispatcherTuning, budget: RetryBudget): RetryRoute {
    return {
      policy: {
        service: this.service,
        maxRetries: opts.retries,
        budget,
        retryOn: new Set(opts.retryOn),
        perTryTimeout: opts.perTryTimeout,
        hedge: opts.hedge === undefined ? undefined : new HedgeDelay(opts.hedge),
        throttle: opts.retryThrottle === undefined ? undefined : new RetryThrottle(opts.retryThrottle),
        deadlineMs: opts.deadline,
        now: this.#now,
        noInstance: () => this.#identityMissing() ? new ConnectIdentityRequiredError(this.service) : new NoInstanceError(this.service),
        gaveUp: (cause, instances) => dispatchFailed(this.service, cause, instances),
        expired: (ms) => new DeadlineExceededError(this.service, ms)
      },
      choose: (tried) => this.#target(this.#choose(tried)),
      send: (target, opts, handler) => {
        this.#outliers.sending(target.origin, target)
        this.#pools.send(target.origin, opts, handler)
      },
      report: {
        succeeded: (instance) => this.#outliers.succeeded(originOf(instance)),
        settled: (target) => this.#outliers.settled(target.origin, target),
        failed: (instance, kind, err) => {
          const origin = originOf(instance)
          this.#log.debug({ instance: instance.id, origin, kind, code: (err as Error & { code?: string } | undefined)?.code }, 'upstream attempt failed')
          if (!this.#closed) this.#outliers.failed(origin, this.#live.get(origin), kind, this.#routable)
        },
        outpaced: (instance) => {
          const origin = originOf(instance)
          this.#log.debug({ instance: instance.id, origin }, 'upstream attempt outpaced by a later try')
          if (!this.#closed) this.#outliers.outpaced(origin, this.#live.get(origin), this.#routable)
        },
        backOff: (instance, ms) => {
          const origin = originOf(instance)
          if (!this.#closed) this.#outliers.failed(origin, this.#live.get(origin), 'status', this.#routable, true, ms)
        },
        timedOut: (instance) => {
          this.#stats.perTryTimeouts++
          const origin = originOf(instance)
          this.#log.debug({ instance: instance.id, origin, perTryTimeout: opts.perTryTimeout }, 'per-try timeout')
          if (!this.#closed) this.#outliers.failed(origin, this.#live.get(origin), 'timeout', this.#routable, true)
        },
        retrying: (next, cause) => {
          this.#stats.retries++
          if (cause === 'status') this.#stats.statusRetries++
          this.#log.debug({ instance: next.id, cause }, 'retrying on another instance')
        },
        hedging: (next) => {
          this.#stats.retries++
          this.#stats.hedges++
          this.#log.debug({ instance: next.id }, 'hedging on another instance')
          this.events.emit('hedge', next)
        },
        hedgeWon: (instance) => {
          this.#stats.hedgesWon++
          this.events.emit('hedgeWon', instance)
        },
        expired: () => {
          this.#stats.deadlinesExceeded++
        },
        ended: (instance, outcome, durationMs, retries) => {
          // One lookup per request when nobody listens: no arguments array, no event object.
          if (this.events.listenerCount('request') > 0) this.events.emit('request', instance, outcome, durationMs, retries)
        },
        denied: (reason) => {
          this.#stats.retriesDenied++
          this.#log.debug({ reason }, 'retry budget exhausted')
        }
      }
    }
  }

  #target (instance: Instance | undefined): Target | undefined {
    if (instance === undefined) return undefined
    const origin = originOf(instance)
    return { instance, origin, load: this.#outliers.loadOf(origin) }
  }

  #choose (tried: ReadonlySet<string>): Instance | undefined {
    const balancer = this.#balancer
    // A first attempt probes an ejected instance whose back-off is over (one probe at a time).
    if (tried.size === 0) return this.#probeTarget() ?? balancer.pick()
    // A retry whose first attempt failed because we were closing: no new pools after close().
    if (this.#closed) return undefined
    // The last try a request may make goes to the next priority level when there is one (Envoy's
    // previous_priorities): when a whole datacenter or zone dies, every try on it fails until Consul
    // notices, and this one try elsewhere is what keeps those requests from failing.
    if (tried.size >= this.#retries) {
      const spare = this.#spare(tried)
      if (spare !== undefined) return spare
    }
    // The balancer's order first, so retries spread like first attempts do…
    for (let i = 0; i < balancer.size; i++) {
      const candidate = balancer.pick()!
      if (!tried.has(originOf(candidate))) return candidate
    }
    // …then a scan, for a random balancer that kept landing on instances already tried; ejected
    // instances last, because trying one beats failing the request (a success re-admits it).
    const untried = (i: Instance): boolean => i.weight > 0 && !tried.has(originOf(i))
    return this.#admitted.find(untried) ?? this.#spare(tried) ?? this.#routed.find(untried)
  }

  /** An untried fallback instance, at random so that the spilled tries spread over the level. */
  #spare (tried: ReadonlySet<string>): Instance | undefined {
    const spares = this.#fallback.filter((i) => !tried.has(originOf(i)))
    return spares.length === 0 ? undefined : spares[randomIndex(this.#random, spares.length)]
  }

  #probeTarget (): Instance | undefined {
    const origin = this.#outliers.probeCandidate()
    // In panic every instance is routed to already; a probe would only bias the pick.
    return origin === undefined || this.#admitted === this.#routed ? undefined : this.#live.get(origin)
  }

  #update (all: readonly Instance[]): void {
    this.#instances = all
    const instances = this.#reachable(all)
    const fallback = this.#reachable(this.#watch.fallback)
    if (fallback.length === 0) {
      this.#routed = this.#self.apply(instances)
      this.#fallback = fallback
    } else {
      // One pass over both, so an instance at our own address is logged once, whichever level it is in.
      const kept = new Set(this.#self.apply([...instances, ...fallback]))
      this.#routed = instances.filter((i) => kept.has(i))
      this.#fallback = fallback.filter((i) => kept.has(i))
    }
    // Fallback instances keep their pools and records too: they are tried, just not picked first.
    this.#live = new Map([...this.#fallback, ...this.#routed].map((i) => [originOf(i), i]))
    // The ejection cap (maxEjectionPercent) keeps capacity, so it counts what a request can still reach:
    // with a fallback level, a whole datacenter or zone that refuses can be ejected and its traffic
    // move on (Envoy counts ejected hosts out of a priority's health the same way), instead of the cap
    // keeping dead instances routed while their failures close the retry throttle (P20 saw it).
    this.#routable = this.#routed.filter((i) => i.weight > 0).length + this.#fallback.filter((i) => i.weight > 0).length
    this.#pools.retain(this.#live)
    this.#outliers.retain(this.#live)
    this.#rebalance()
  }

  /**
   * Without a Connect identity a Connect-native instance can only refuse us (it demands a client
   * certificate): it is left out, logged once while it lasts, rather than tried, failed and ejected.
   */
  #reachable (instances: readonly Instance[]): readonly Instance[] {
    if (this.#dialsNative || !instances.some(isNative)) return instances
    if (!this.#nativeLeftOut) {
      this.#nativeLeftOut = true
      this.#log.warn('Connect-native instances are not routed to: this app has no Connect identity (the plugin\'s `connect` option)')
    }
    return instances.filter((i) => !isNative(i))
  }

  /** No instance to pick because every one is Connect-native and we cannot dial them: say so, not "no healthy instance". */
  #identityMissing (): boolean {
    return !this.#dialsNative && this.#routed.length === 0 && this.#fallback.length === 0 && [...this.#instances, ...this.#watch.fallback].some(isNative)
  }

  #balance (instances: readonly Instance[]): Balancer {
    return createBalancer(this.#balancerName, instances, { random: this.#random, load: (i) => this.#outliers.loadOf(originOf(i)), now: this.#now })
  }

  #rebalance (): void {
    const admitted = this.#routed.filter((i) => !this.#outliers.isEjected(originOf(i)))
    const spilled = this.#fallback.filter((i) => i.weight > 0 && !this.#outliers.isEjected(originOf(i)))
    // Every routed instance ejected: their level has no health left, so first attempts go to the next
    // level's admitted instances (Envoy's priority load with ejected hosts counted out), until a probe
    // re-admits one or Consul's own view moves the levels. Only with nowhere else to go, Envoy's panic
    // mode: trying them all beats refusing every request.
    this.#admitted = admitted.some((i) => i.weight > 0) ? admitted : spilled.length > 0 ? spilled : this.#routed
    this.#balancer = this.#balance(this.#admitted)
  }

  #shutdown (end: (pool: Pool) => Promise<void>): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true
      this.#watch.off('change', this.#onChange)
      this.#outliers.close()
      this.#closing = Promise.all([this.#watch.close(), ...this.#pools.end(end)]).then(() => {})
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

function isNative (instance: Instance): boolean {
  return instance.connect === 'native'
}
