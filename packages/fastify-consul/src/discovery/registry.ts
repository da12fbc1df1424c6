import { toMs } from '../consul/duration.js'
import type { ConsulHttp } from '../consul/http.js'
import { DiscoveryInvalidOptionError, WatchClosedError } from '../errors.js'
import type { Logger } from '../util/logger.js'
import { BalancedDispatcher } from './dispatch/dispatcher.js'
import type { ServiceDispatcher } from './dispatch/service-dispatcher.js'
import type { ConnectIdentitySource } from './dispatch/connect-dialing.js'
import { balancerSettings, dispatchSettings, validateDiscoveryOptions, watchSettings, type BalancerSettings, type DiscoverOptions, type DispatcherOptions, type DispatchOptions, type WatchSettings } from './options.js'
import { WatchHandle } from './watch-handle.js'
import { selfMatcher, type ListeningAddress } from './self-address.js'
import { Watcher } from './watch/watcher.js'
import { PriorityWatcher } from './watch/priority-watcher.js'
import { datacenterFacts, failoverOrder } from './watch/failover-datacenters.js'
import type { ServiceWatch, WatchSource } from './watch/service-watch.js'

export interface DiscoveryOptions {
  http: ConsulHttp
  log: Logger
  /** Applied under every discover()/dispatcher() call's own options; validated by the caller. */
  defaults?: DispatcherOptions
  /** This app's Connect identity (the plugin's `connect` option): dispatchers dial Connect-native instances with it. */
  connect?: ConnectIdentitySource | undefined
  /** This process's zone (`service.zone` or `REG_ZONE`), for `locality: true`. */
  zone?: string | undefined
}

/**
 * Discovery for one Consul connection: shared, reference-counted watchers (one per distinct query),
 * handed out as lightweight handles, and balanced undici dispatchers fed by them.
 */
interface SharedWatcher {
  key: string
  watcher: WatchSource & { start (): void }
  refs: number
}

export class DiscoveryRegistry {
  readonly #http: ConsulHttp
  readonly #log: Logger
  readonly #defaults: DispatcherOptions
  readonly #zone: string | undefined
  readonly #connect: ConnectIdentitySource | undefined
  readonly #watchers = new Map<string, SharedWatcher>()
  readonly #handles = new Map<ServiceWatch, SharedWatcher>()
  readonly #dispatchers = new Set<BalancedDispatcher>()
  #isSelf: (origin: string) => boolean = () => false
  #closed = false

  constructor (opts: DiscoveryOptions) {
    this.#http = opts.http
    this.#log = opts.log
    this.#defaults = opts.defaults ?? {}
    this.#zone = opts.zone
    this.#connect = opts.connect
  }

  /** Watchers currently running (one per distinct query). */
  get watchers (): number {
    return this.#watchers.size
  }

  /**
   * The running single-query watchers, for read-only views such as metrics: state, `all`, panic. A
   * failover watch is not listed itself: each of its datacenters' watchers is.
   */
  get running (): readonly Watcher[] {
    return [...this.#watchers.values()].map((entry) => entry.watcher).filter((w) => w instanceof Watcher)
  }

  /**
   * A handle on the shared watch for this query, started on first use. Close it when done: the
   * watcher stops with its last handle, or on DiscoveryRegistry.close().
   */
  discover (service: string, opts?: DiscoverOptions): ServiceWatch {
    const given = validateDiscoveryOptions<DiscoverOptions>(opts, 'discover')
    const o = mergeOver(this.#defaults, given)
    return this.#open(this.#entry(serviceName(service), o, failoverField(given)), balancerSettings(o), readyTimeoutOf(o))
  }

  /**
   * An undici Dispatcher for `service`: `request('http://service/path', { dispatcher })`. Given a watch
   * from discover(), it shares that watch's watcher (one query on Consul, one view of the instances)
   * and takes only the dispatcher's own options. Closing it releases its own hold on the watcher.
   */
  dispatcher (target: string | ServiceWatch, opts?: DispatcherOptions | DispatchOptions): ServiceDispatcher {
    let shared: SharedWatcher
    let o: DispatcherOptions
    if (typeof target === 'string') {
      const given = validateDiscoveryOptions<DispatcherOptions>(opts, 'dispatcher')
      o = mergeOver(this.#defaults, given)
      shared = this.#entry(serviceName(target), o, failoverField(given))
    } else {
      o = mergeOver(this.#defaults, validateDiscoveryOptions<DispatchOptions>(opts, 'dispatch'))
      const found = this.#handles.get(target)
      if (found === undefined) throw new DiscoveryInvalidOptionError('watch', 'a watch from this fastify.consul.discover() that is not closed')
      shared = found
    }
    // Read once: the dispatcher's balancer settings are also its watch handle's.
    const settings = dispatchSettings(o)
    const dispatcher = new BalancedDispatcher({
      ...settings,
      watch: this.#open(shared, settings, readyTimeoutOf(o)),
      log: this.#log,
      isSelf: this.#isSelf,
      connect: this.#connect,
      onClose: () => this.#dispatchers.delete(dispatcher)
    })
    this.#dispatchers.add(dispatcher)
    return dispatcher
  }

  /**
   * The addresses this process listens on, once it does: every dispatcher, present and future, stops
   * routing to instances registered at them (a forwarding loop otherwise).
   */
  listening (addresses: readonly ListeningAddress[]): void {
    this.#isSelf = selfMatcher(addresses)
    for (const d of this.#dispatchers) d.setSelf(this.#isSelf)
  }

  /** Closes every dispatcher (letting in-flight requests finish) and stops every watcher. */
  async close (): Promise<void> {
    this.#closed = true
    await Promise.all([
      ...[...this.#dispatchers].map((d) => d.close()),
      ...[...this.#handles.keys()].map((h) => h.close())
    ])
  }

  /**
   * The shared watcher for this query: found, or created and started. With failover, a PriorityWatcher
   * that holds the shared watcher of the same query in each datacenter (so a plain `dc` watch of one
   * of them shares its query with the failover watch).
   */
  #entry (service: string, o: DiscoverOptions, field: string): SharedWatcher {
    if (this.#closed) throw new WatchClosedError(service)
    const settings: WatchSettings = watchSettings(service, o, this.#zone, field)
    let entry = this.#watchers.get(settings.key)
    if (entry === undefined) {
      const watcher = settings.failover === undefined
        ? new Watcher({ http: this.#http, log: this.#log, ...settings })
        : new PriorityWatcher({
          http: this.#http,
          log: this.#log,
          query: settings.query,
          failover: settings.failover,
          panicThreshold: settings.panicThreshold,
          backoff: settings.backoff,
          random: settings.random,
          acquire: (dc) => {
            // The datacenter's own watch: the same query and tuning, without failover or locality.
            const child = this.#entry(service, { ...o, dc, failover: undefined, locality: undefined }, field)
            child.refs++
            return { watcher: child.watcher, release: () => this.#release(child) }
          }
        })
      entry = { key: settings.key, watcher, refs: 0 }
      this.#watchers.set(settings.key, entry)
      watcher.start()
    }
    return entry
  }

  // Callers checked `closed`: #entry for a new query, the handle lookup for a given watch (close() closes them all).
  #open (shared: SharedWatcher, picking: BalancerSettings, readyTimeout: number | undefined): WatchHandle {
    shared.refs++
    const handle: WatchHandle = new WatchHandle(shared.watcher, picking, readyTimeout, async () => {
      this.#handles.delete(handle)
      await this.#release(shared)
    })
    this.#handles.set(handle, shared)
    return handle
  }

  /** One holder less; the last one stops the watcher (a failover watch then releases its datacenters'). */
  async #release (shared: SharedWatcher): Promise<void> {
    if (--shared.refs > 0) return
    this.#watchers.delete(shared.key)
    await shared.watcher.stop()
  }
}

/**
 * The plugin's failover list against the datacenters Consul knows, at `ready()`: an unknown name throws
 * FST_REG_DISCOVERY_UNKNOWN_DATACENTER naming `field.datacenters[i]`. An agent that cannot be read
 * throws only with `failFast` (it is a deploy error then); otherwise each watch checks on its own.
 */
export async function checkFailoverDatacenters (http: ConsulHttp, datacenters: readonly string[], field: string, failFast: boolean, log: Logger): Promise<void> {
  let facts
  try {
    facts = await datacenterFacts(http, AbortSignal.timeout(10_000))
  } catch (err) {
    if (failFast) throw err
    log.warn({ err }, 'discovery failover: datacenters not checked at startup (Consul unreachable); each watch checks when it can')
    return
  }
  failoverOrder({ datacenters, nearest: 0, field }, facts, undefined)
}

/** Where a failover list was written: in this call's options, or in the plugin's `discovery`. */
function failoverField (given: DiscoverOptions): string {
  return given.failover === undefined ? 'discovery.failover' : 'failover'
}

/** Merges a call's options over the plugin's: a key the call left undefined keeps the plugin's value. */
function mergeOver<T extends object> (defaults: DispatcherOptions, given: T): DispatcherOptions & T {
  const merged: Record<string, unknown> = { ...defaults }
  for (const [key, value] of Object.entries(given)) if (value !== undefined) merged[key] = value
  return merged as DispatcherOptions & T
}

function readyTimeoutOf (o: Pick<DiscoverOptions, 'readyTimeout'>): number | undefined {
  return o.readyTimeout === undefined ? undefined : toMs(o.readyTimeout)
}

function serviceName (service: unknown): string {
  if (typeof service !== 'string' || service === '') throw new DiscoveryInvalidOptionError('service', 'a non-empty service name')
  return service
}
