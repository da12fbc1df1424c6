import type { FastifyBaseLogger } from 'fastify'
import { Type, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import type { Pool } from 'undici'
import type { BackoffOptions } from './backoff.js'
import { BALANCERS, createBalancer, type Balancer, type BalancerName } from './balancer.js'
import type { ConsulHttp } from './consul-http.js'
import { DISPATCHER_DEFAULTS, ServiceDispatcher, type DispatcherTuning } from './dispatcher.js'
import { DiscoveryInvalidOptionError, NoInstanceError, WatchClosedError } from './errors.js'
import type { Instance } from './instance.js'
import type { InstanceSet } from './instance-set.js'
import type { RetryBudgetOptions } from './retry.js'
import { WATCH_DEFAULTS, Watcher, type RateLimit, type ServiceWatch, type WatchQuery, type WatchState, type WatchTuning } from './watcher.js'

export interface DiscoverOptions {
  /** Only instances carrying this tag (`?tag`). */
  tag?: string
  /** Datacenter to query; the agent's own by default. */
  dc?: string
  /** Default true: only instances whose checks all pass. False admits warning instances too, at their `Weights.Warning`. */
  passingOnly?: boolean
  /** bexpr filter, e.g. `Service.Meta.version == "2"` (Consul ≥ 1.5). */
  filter?: string
  /** Let any Consul server answer (`?stale`), so reads survive the loss of the leader. Default false. */
  stale?: boolean
  /** Default 'round-robin'. 'weighted' follows Consul's `Weights`. */
  balancer?: BalancerName
  /**
   * Blocking-query wait: ms, or a duration such as '2s' / '500ms' / '5m'. Default 5 min, at most 10 min.
   * This and the other engine settings below apply when the call starts a watcher; later callers of
   * the same query share that watcher as it is.
   */
  wait?: number | string
  /** How long the last good set is served while Consul cannot be read, in ms. Default 60 s. */
  staleTtl?: number
  /** Full-jitter backoff after failed queries, in ms. Default { base: 200, cap: 30000 }. */
  backoff?: Partial<BackoffOptions>
  /** Rate limit on the query loop. Default { perSecond: 10, burst: 10 }. */
  rateLimit?: Partial<RateLimit>
  /** Uniform source in [0, 1) for the balancers and the backoff jitter. Default Math.random. */
  random?: () => number
}

export interface DispatcherOptions extends DiscoverOptions {
  /** Extra attempts per request, each on another instance. Default 2. */
  retries?: number
  /** Default { ratio: 0.2, minPerSecond: 10, burst: 100 }. */
  retryBudget?: Partial<RetryBudgetOptions>
  /** How long an instance that refused a connection is skipped, in ms; 0 disables. Default 30 s. */
  ejectionMs?: number
  /** Options for each upstream's undici Pool. */
  pool?: Pool.Options
}

export interface DiscoveryOptions {
  http: ConsulHttp
  log: FastifyBaseLogger
  /** Applied under every discover()/dispatcher() call's own options. */
  defaults?: DispatcherOptions
}

const MAX_WAIT = 10 * 60_000
const NonEmpty = Type.String({ minLength: 1 })
const Ms = Type.Integer({ minimum: 0 })

const discoverFields = {
  tag: Type.Optional(NonEmpty),
  dc: Type.Optional(NonEmpty),
  passingOnly: Type.Optional(Type.Boolean()),
  filter: Type.Optional(NonEmpty),
  stale: Type.Optional(Type.Boolean()),
  balancer: Type.Optional(Type.Union(BALANCERS.map((b) => Type.Literal(b)))),
  wait: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: MAX_WAIT }), Type.String({ pattern: '^[0-9]+(ms|s|m)$' })])),
  staleTtl: Type.Optional(Ms),
  backoff: Type.Optional(Type.Object({ base: Type.Optional(Type.Integer({ minimum: 1 })), cap: Type.Optional(Type.Integer({ minimum: 1 })) }, { additionalProperties: false })),
  rateLimit: Type.Optional(Type.Object({ perSecond: Type.Optional(Type.Number({ exclusiveMinimum: 0 })), burst: Type.Optional(Type.Number({ minimum: 1 })) }, { additionalProperties: false })),
  random: Type.Optional(Type.Function([], Type.Number()))
}

const dispatcherFields = {
  ...discoverFields,
  retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 10 })),
  retryBudget: Type.Optional(Type.Object({
    ratio: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    minPerSecond: Type.Optional(Type.Number({ minimum: 0 })),
    burst: Type.Optional(Type.Number({ minimum: 1 }))
  }, { additionalProperties: false })),
  ejectionMs: Type.Optional(Ms),
  pool: Type.Optional(Type.Object({}, { additionalProperties: true }))
}

const DiscoverSchema = Type.Object(discoverFields, { additionalProperties: false })
const DispatcherSchema = Type.Object(dispatcherFields, { additionalProperties: false })

const EXPECTED: Readonly<Record<string, string>> = {
  tag: 'a non-empty string',
  dc: 'a non-empty string',
  passingOnly: 'a boolean',
  filter: 'a non-empty bexpr expression',
  stale: 'a boolean',
  balancer: `one of ${BALANCERS.join(', ')}`,
  wait: `milliseconds from 1 to ${MAX_WAIT}, or a duration such as "2s", "500ms" or "5m" up to 10m`,
  staleTtl: 'milliseconds >= 0',
  backoff: '{ base, cap } in milliseconds >= 1',
  rateLimit: '{ perSecond > 0, burst >= 1 }',
  random: 'a function returning a number in [0, 1)',
  retries: 'an integer from 0 to 10',
  retryBudget: '{ ratio from 0 to 1, minPerSecond >= 0, burst >= 1 }',
  ejectionMs: 'milliseconds >= 0',
  pool: 'undici Pool options (an object)'
}

function check (schema: TSchema, value: unknown, prefix: string): void {
  const first = Value.Errors(schema, value).First()
  if (first === undefined) return
  const path = first.path.split('/').filter(Boolean)
  const top = path[0]
  const field = prefix + path.join('.')
  if (top === undefined) throw new DiscoveryInvalidOptionError(prefix.replace(/\.$/, '') || 'options', 'an object')
  const known = Object.keys(schema.properties as object)
  const expected = known.includes(top) ? EXPECTED[top]! : `a known option (${known.join(', ')})`
  throw new DiscoveryInvalidOptionError(field, expected)
}

/** Milliseconds from a number of ms or a '500ms' / '2s' / '5m' duration. */
export function parseWait (wait: number | string): number {
  if (typeof wait === 'number') return wait
  const [, n, unit] = /^([0-9]+)(ms|s|m)$/.exec(wait)!
  return Number(n) * (unit === 'm' ? 60_000 : unit === 's' ? 1000 : 1)
}

interface Normalised {
  query: WatchQuery
  key: string
  balancer: BalancerName
  random: () => number
  tuning: WatchTuning
  dispatch: DispatcherTuning
}

/**
 * The one place options are checked and defaulted. Invalid values throw
 * FST_REG_DISCOVERY_INVALID_OPTION naming the field, before anything starts.
 */
export function normaliseOptions (service: unknown, opts: unknown, defaults: DispatcherOptions, forDispatcher: boolean): Normalised {
  if (typeof service !== 'string' || service === '') throw new DiscoveryInvalidOptionError('service', 'a non-empty service name')
  const given = opts ?? {}
  check(forDispatcher ? DispatcherSchema : DiscoverSchema, given, '')
  const o: DispatcherOptions = { ...defaults, ...given as DispatcherOptions }
  const wait = parseWait(o.wait ?? WATCH_DEFAULTS.wait)
  if (wait < 1 || wait > MAX_WAIT) throw new DiscoveryInvalidOptionError('wait', EXPECTED.wait!)
  const backoff = { ...WATCH_DEFAULTS.backoff, ...o.backoff }
  if (backoff.cap < backoff.base) throw new DiscoveryInvalidOptionError('backoff.cap', 'a value >= backoff.base')
  const query: WatchQuery = {
    service,
    tag: o.tag,
    dc: o.dc,
    passingOnly: o.passingOnly ?? true,
    filter: o.filter,
    stale: o.stale ?? false
  }
  const random = o.random ?? Math.random
  return {
    query,
    key: JSON.stringify([query.service, query.tag ?? null, query.dc ?? null, query.passingOnly, query.filter ?? null, query.stale]),
    balancer: o.balancer ?? 'round-robin',
    random,
    tuning: {
      wait,
      staleTtl: o.staleTtl ?? WATCH_DEFAULTS.staleTtl,
      backoff,
      rateLimit: { ...WATCH_DEFAULTS.rateLimit, ...o.rateLimit },
      random
    },
    dispatch: {
      retries: o.retries ?? DISPATCHER_DEFAULTS.retries,
      retryBudget: { ...DISPATCHER_DEFAULTS.retryBudget, ...o.retryBudget },
      ejectionMs: o.ejectionMs ?? DISPATCHER_DEFAULTS.ejectionMs,
      pool: o.pool ?? {}
    }
  }
}

type ChangeListener = (instances: readonly Instance[]) => void
type StateListener = (state: WatchState) => void

/** One holder's view of a shared watcher: its own balancer, listeners and close(). */
class WatchHandle implements ServiceWatch {
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

/**
 * Discovery for one Consul connection: shared, reference-counted watchers (one per distinct query),
 * handed out as lightweight handles, and balanced undici dispatchers fed by them.
 */
export class Discovery {
  readonly #http: ConsulHttp
  readonly #log: FastifyBaseLogger
  readonly #defaults: DispatcherOptions
  readonly #watchers = new Map<string, { watcher: Watcher, refs: number }>()
  readonly #handles = new Set<WatchHandle>()
  readonly #dispatchers = new Set<ServiceDispatcher>()
  #closed = false

  constructor (opts: DiscoveryOptions) {
    this.#http = opts.http
    this.#log = opts.log
    this.#defaults = opts.defaults ?? {}
    check(DispatcherSchema, this.#defaults, 'defaults.')
  }

  /** Watchers currently running (one per distinct query). */
  get watchers (): number {
    return this.#watchers.size
  }

  /**
   * A handle on the shared watch for this query, started on first use. Close it when done: the
   * watcher stops with its last handle, or on Discovery.close().
   */
  discover (service: string, opts?: DiscoverOptions): ServiceWatch {
    return this.#open(normaliseOptions(service, opts, this.#defaults, false))
  }

  /**
   * An undici Dispatcher for `service`: `request('http://service/path', { dispatcher })`. Closing it
   * releases its watch.
   */
  dispatcher (service: string, opts?: DispatcherOptions): ServiceDispatcher {
    const n = normaliseOptions(service, opts, this.#defaults, true)
    const watch = this.#open(n)
    const dispatcher: ServiceDispatcher = new ServiceDispatcher({
      watch,
      log: this.#log,
      balancer: n.balancer,
      random: n.random,
      ...n.dispatch,
      onClose: () => this.#dispatchers.delete(dispatcher)
    })
    this.#dispatchers.add(dispatcher)
    return dispatcher
  }

  /** Closes every dispatcher (letting in-flight requests finish) and stops every watcher. */
  async close (): Promise<void> {
    this.#closed = true
    await Promise.all([
      ...[...this.#dispatchers].map((d) => d.close()),
      ...[...this.#handles].map((h) => h.close())
    ])
  }

  #open (n: Normalised): WatchHandle {
    if (this.#closed) throw new WatchClosedError(n.query.service)
    let entry = this.#watchers.get(n.key)
    if (entry === undefined) {
      const watcher = new Watcher({ http: this.#http, log: this.#log, query: n.query, ...n.tuning })
      entry = { watcher, refs: 0 }
      this.#watchers.set(n.key, entry)
      watcher.start()
    }
    entry.refs++
    const shared = entry
    const handle: WatchHandle = new WatchHandle(shared.watcher, n.balancer, n.random, async () => {
      this.#handles.delete(handle)
      if (--shared.refs > 0) return
      this.#watchers.delete(n.key)
      await shared.watcher.stop()
    })
    this.#handles.add(handle)
    return handle
  }
}
