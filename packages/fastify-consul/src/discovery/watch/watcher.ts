import { pause } from '../../util/pause.js'
import type { Logger } from '../../util/logger.js'
import { fullJitter } from '../../util/backoff.js'
import { blockingParams, nextIndex, requestTimeout } from '../../consul/blocking-query.js'
import { httpError, type ConsulHttp } from '../../consul/http.js'
import { WatchClosedError } from '../../errors.js'
import { parseHealth, type Instance, type InvalidInstance } from './instance.js'
import { InstanceSet } from './instance-set.js'
import { NO_ROUTE, prioritize, type Routing } from './routing.js'
import { TokenBucket } from '../../util/token-bucket.js'
import { zoneLevels } from './locality.js'
import type { PriorityLevel, WatchListener, WatchQuery, WatchSource, WatchState, WatchTuning } from './service-watch.js'

export type { WatchListener } from './service-watch.js'

/** Longest pause between two reads of Consul while a last known set is being served. */
const STALE_RETRY_CAP = 1000

export interface WatcherOptions extends WatchTuning {
  http: ConsulHttp
  log: Logger
  query: WatchQuery
}

/**
 * The go-kit "instancer": one blocking-query loop on `/v1/health/service/:name` that publishes
 * immutable InstanceSet snapshots. It never does anything per pick; consumers read `current`.
 */
export class Watcher implements WatchSource {
  readonly query: WatchQuery
  /** Resolves on the first successful answer; rejects with FST_REG_DISCOVERY_CLOSED if stopped first. */
  readonly ready: Promise<void>
  readonly attempted: Promise<void>

  readonly #http: ConsulHttp
  readonly #log: Logger
  readonly #tuning: WatchTuning
  readonly #path: string
  readonly #limiter: TokenBucket
  readonly #abort = new AbortController()
  readonly #listeners = new Set<WatchListener>()
  #current = InstanceSet.EMPTY
  #all = InstanceSet.EMPTY
  #fallback = InstanceSet.EMPTY
  #routing: Routing = NO_ROUTE
  #lastContact: number | undefined
  #invalid = new Map<string, InvalidInstance>()
  #state: WatchState = 'starting'
  #loop: Promise<void> | undefined
  #staleTimer: NodeJS.Timeout | undefined
  #staleSince = 0
  #resolveReady!: () => void
  #rejectReady!: (err: Error) => void
  #attempted!: () => void

  constructor (opts: WatcherOptions) {
    this.query = opts.query
    this.#http = opts.http
    this.#tuning = { wait: opts.wait, staleTtl: opts.staleTtl, panicThreshold: opts.panicThreshold, backoff: opts.backoff, rateLimit: opts.rateLimit, random: opts.random }
    const q = opts.query
    this.#log = opts.log.child({ watch: q.service, tag: q.tag, dc: q.dc })
    this.#path = `/v1/health/service/${encodeURIComponent(q.service)}`
    this.#limiter = new TokenBucket(this.#tuning.rateLimit)
    this.ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve
      this.#rejectReady = reject
    })
    // Holders that never await `ready` must not turn a close-before-ready into an unhandled rejection.
    this.ready.catch(() => {})
    this.attempted = new Promise<void>((resolve) => { this.#attempted = resolve })
  }

  get state (): WatchState {
    return this.#state
  }

  /** The routed snapshot: what balancers pick from. */
  get current (): InstanceSet {
    return this.#current
  }

  /** Every instance of the last answer, routed or not. */
  get all (): InstanceSet {
    return this.#all
  }

  get fallback (): InstanceSet {
    return this.#fallback
  }

  get panic (): boolean {
    return this.#routing.panic
  }

  get priorities (): readonly PriorityLevel[] {
    const q = this.query
    return this.#routing.levels.map((level, i) => ({
      datacenter: q.dc,
      zone: q.locality !== undefined && i === 0 ? q.locality.zone : undefined,
      state: this.#state,
      ...level
    }))
  }

  /** Entries of the last answer left out because their address and port make no origin. */
  get invalid (): number {
    return this.#invalid.size
  }

  /**
   * One warning per bad entry, not one per answer: a blocking query re-reads the same entry on every
   * change of the service, and an operator needs the id and the reason once. An entry that is fixed or
   * deregistered is forgotten, so it is reported again if it comes back broken.
   */
  #reportInvalid (invalid: readonly InvalidInstance[]): void {
    if (invalid.length === 0 && this.#invalid.size === 0) return
    const now = new Map(invalid.map((i) => [`${i.node}/${i.id}`, i]))
    for (const [key, entry] of now) {
      if (!this.#invalid.has(key)) this.#log.warn({ instance: entry.id, node: entry.node, address: entry.address, port: entry.port, reason: entry.reason }, 'discovery: instance left out, no request can be sent to its address')
    }
    this.#invalid = now
  }

  get lastContact (): number | undefined {
    return this.#lastContact
  }

  /**
   * When the current outage's first failed read happened (epoch ms), or undefined while not stale. Not
   * lastContact: an idle blocking query is contact too, though it answers only every `wait` (5 min).
   */
  get outageSince (): number | undefined {
    return this.#state === 'stale' || this.#state === 'expired' ? Math.round(performance.timeOrigin + this.#staleSince) : undefined
  }

  /** Starts the loop; idempotent, and a no-op once stopped. */
  start (): void {
    if (this.#loop !== undefined || this.#abort.signal.aborted) return
    this.#loop = this.#run()
  }

  /** Aborts the in-flight query and resolves once the loop has returned. Idempotent. */
  async stop (): Promise<void> {
    if (!this.#abort.signal.aborted) {
      this.#abort.abort()
      clearTimeout(this.#staleTimer)
      this.#rejectReady(new WatchClosedError(this.query.service))
      this.#attempted()
      this.#setState('closed')
      this.#listeners.clear()
    }
    await this.#loop
  }

  /** Returns the unsubscribe function. */
  subscribe (listener: WatchListener): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  #params (index: number): Record<string, string | boolean | number | undefined> {
    const q = this.query
    return {
      ...blockingParams(index, this.#tuning.wait),
      tag: q.tag,
      dc: q.dc,
      filter: q.filter,
      stale: q.stale,
      cached: q.cached
    }
  }

  async #run (): Promise<void> {
    const signal = this.#abort.signal
    const { backoff, random } = this.#tuning
    const timeout = requestTimeout(this.#tuning.wait)
    let index = 0
    let failures = 0
    while (!signal.aborted) {
      const delay = this.#limiter.reserve()
      if (delay > 0) {
        this.#log.debug({ delay }, 'discovery loop rate-limited')
        await pause(delay, signal)
        if (signal.aborted) break
      }
      try {
        this.#log.debug({ index }, 'discovery query')
        const res = await this.#http.send({ path: this.#path, query: this.#params(index), timeout, signal })
        if (res.status !== 200) throw httpError(`GET ${this.#path}`, res)
        const { instances, invalid } = parseHealth(this.query.service, res.text)
        index = nextIndex(index, res.index)
        failures = 0
        this.#reportInvalid(invalid)
        this.#succeed(instances)
        this.#attempted()
      } catch (err) {
        this.#attempted()
        if (signal.aborted) break
        // After any failure the index we hold may belong to an agent that no longer exists (a -dev
        // restart starts over at a low index), and blocking on it would stall for a whole wait.
        index = 0
        this.#fail(err as Error, failures)
        // While we serve a last known set, Consul's return must reach callers within a second: the cap
        // drops to 1 s (still jittered, still under the rate limit) instead of growing to backoff.cap.
        const cap = this.#state === 'stale' ? Math.min(backoff.cap, STALE_RETRY_CAP) : backoff.cap
        await pause(fullJitter(failures++, { base: backoff.base, cap }, random), signal)
      }
    }
  }

  #succeed (instances: Instance[]): void {
    const q = this.query
    this.#lastContact = Date.now()
    // Every instance with its checks comes back (no `?passing`): what to route to is decided here, where
    // a health signal that drops everyone can be recognised as a signal, not an outage.
    const all = InstanceSet.from(instances)
    const allChanged = !all.equals(this.#all)
    this.#all = all
    const routing = prioritize(zoneLevels(all.instances, q.locality), q.passingOnly, this.#tuning.panicThreshold)
    const set = InstanceSet.from(routing.instances)
    const was = this.#state
    if (this.#staleTimer !== undefined) {
      clearTimeout(this.#staleTimer)
      this.#staleTimer = undefined
    }
    if (was === 'stale' || was === 'expired') {
      this.#log.info({ instances: set.size, outageMs: Math.round(performance.now() - this.#staleSince) }, 'discovery recovered')
    } else if (was === 'starting' && set.size === 0) {
      this.#log.info(this.#http.hasToken
        ? 'no instances yet'
        : 'no instances yet (with ACLs on, a read without a token also comes back empty)')
    }
    this.#setPanic(routing)
    if (allChanged) this.#emit('all', (l) => l.all(all))
    const fallback = InstanceSet.from(routing.fallback)
    const fallbackChanged = !fallback.equals(this.#fallback)
    this.#fallback = fallback
    if (!set.equals(this.#current) || fallbackChanged) {
      this.#current = set
      this.#log.debug({ instances: set.size }, 'discovery set changed')
      this.#emit('change', (l) => l.change(set))
    }
    this.#setState('live')
    if (was === 'starting') this.#resolveReady()
  }

  #fail (err: Error, failures: number): void {
    const code = (err as Error & { code?: string }).code
    if (this.#state === 'live') {
      this.#staleSince = performance.now()
      // The default is to keep the last good set for the whole outage (go-kit keeps its cache too).
      if (Number.isFinite(this.#tuning.staleTtl)) {
        this.#staleTimer = setTimeout(() => this.#expire(), this.#tuning.staleTtl)
        this.#staleTimer.unref()
      }
      this.#log.warn({ err, code, staleTtl: this.#tuning.staleTtl, instances: this.#current.size }, 'discovery query failed; serving the last known instances')
      this.#setState('stale')
    } else if (failures === 0 && this.#state === 'starting') {
      this.#log.warn({ err, code }, 'discovery query failed; retrying with backoff')
    } else {
      this.#log.debug({ err, code, failures }, 'discovery query failed')
    }
  }

  #expire (): void {
    this.#staleTimer = undefined
    this.#log.error({ staleTtl: this.#tuning.staleTtl }, 'discovery stale for longer than staleTtl; instances cleared')
    this.#setState('expired')
    this.#all = InstanceSet.EMPTY
    this.#fallback = InstanceSet.EMPTY
    this.#setPanic(NO_ROUTE)
    this.#emit('all', (l) => l.all(InstanceSet.EMPTY))
    if (this.#current.size > 0) {
      this.#current = InstanceSet.EMPTY
      this.#emit('change', (l) => l.change(InstanceSet.EMPTY))
    }
  }

  #setPanic (routing: Routing): void {
    const was = this.#routing.panic
    this.#routing = routing
    if (was === routing.panic) return
    const detail = { routable: routing.routable, candidates: routing.candidates, panicThreshold: this.#tuning.panicThreshold }
    if (routing.panic) this.#log.warn(detail, 'discovery panic: too few healthy instances; routing to every instance not in maintenance')
    else this.#log.warn(detail, 'discovery panic over: routing to healthy instances only')
    this.#emit('panic', (l) => l.panic(routing.panic))
  }

  #setState (state: WatchState): void {
    if (state === this.#state) return
    this.#state = state
    this.#emit('state', (l) => l.state(state))
  }

  #emit (event: 'change' | 'state' | 'panic' | 'all', call: (listener: WatchListener) => void): void {
    for (const listener of [...this.#listeners]) {
      try {
        call(listener)
      } catch (err) {
        // A throwing consumer must not stop the loop that every other consumer depends on.
        this.#log.error({ err, event }, 'discovery listener threw')
      }
    }
  }
}
