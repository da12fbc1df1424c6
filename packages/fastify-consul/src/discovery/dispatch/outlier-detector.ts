import type { Logger } from '../../util/logger.js'
import { UpstreamLoad } from '../lb/upstream-load.js'
import type { Instance } from '../watch/instance.js'
import type { FailureKind } from './failure.js'
import { OutlierState, mayEject, type EjectionTimes } from './outlier.js'

/** What the detector counts, a slice of the dispatcher's stats (it writes into the dispatcher's object). */
export interface EjectionStats {
  ejections: number
  outlierEjections: number
  ejectionsCapped: number
  readmissions: number
}

export interface OutlierDetectorOptions {
  ejection: EjectionTimes
  consecutiveFailures: number
  maxEjectionPercent: number
  now: () => number
  log: Logger
  stats: EjectionStats
  /** An instance was ejected for `ms` (the dispatcher's `eject` event). */
  ejected: (instance: Instance, ejection: { reason: FailureKind, ms: number }) => void
  /** An ejected instance is back (the dispatcher's `readmit` event). */
  readmitted: (instance: Instance, reason: 'time' | 'success') => void
  /** The admitted set changed: the dispatcher rebuilds its balancer. */
  onChange: () => void
}

/** What the dispatcher knows about one upstream beyond Consul's view: live load and failure record. */
interface Upstream {
  readonly load: UpstreamLoad
  readonly outlier: OutlierState
}

interface Ejection {
  instance: Instance
  timer: NodeJS.Timeout
}

/**
 * Envoy's outlier detection over one dispatcher's upstreams, by origin: each upstream's live load and
 * failure record, the ejection timers, and the max-ejection cap. The dispatcher tells it which
 * origins are live and routable; it says which are ejected.
 */
export class OutlierDetector {
  readonly #opts: OutlierDetectorOptions
  readonly #upstreams = new Map<string, Upstream>()
  readonly #ejected = new Map<string, Ejection>()
  #closed = false

  constructor (opts: OutlierDetectorOptions) {
    this.#opts = opts
  }

  /** The origin's live load, made on first use. */
  loadOf (origin: string): UpstreamLoad {
    return this.#upstream(origin).load
  }

  /** Attempts in flight at the origin; 0 for one it does not know. */
  outstanding (origin: string): number {
    return this.#upstreams.get(origin)?.load.outstanding ?? 0
  }

  isEjected (origin: string): boolean {
    return this.#ejected.has(origin)
  }

  get ejected (): readonly Instance[] {
    return [...this.#ejected.values()].map((e) => e.instance)
  }

  #upstream (origin: string): Upstream {
    let upstream = this.#upstreams.get(origin)
    if (upstream === undefined) {
      upstream = { load: new UpstreamLoad(), outlier: new OutlierState() }
      this.#upstreams.set(origin, upstream)
    }
    return upstream
  }

  /** Forgets origins that left: their ejections end, their records go (attempts in flight keep their load). */
  retain (live: ReadonlyMap<string, Instance>): void {
    for (const [origin, ejection] of this.#ejected) {
      if (live.has(origin)) continue
      clearTimeout(ejection.timer)
      this.#ejected.delete(origin)
    }
    for (const origin of this.#upstreams.keys()) if (!live.has(origin)) this.#upstreams.delete(origin)
  }

  succeeded (origin: string): void {
    // An instance that left the set while the attempt was in flight has no record any more.
    const upstream = this.#upstreams.get(origin)
    if (upstream === undefined) return
    upstream.outlier.succeed()
    if (this.#ejected.has(origin)) this.#readmit(origin, 'success')
  }

  /** A failure at `origin`, whose current instance is `current` (undefined: no longer in the set), of `routable` instances. */
  failed (origin: string, current: Instance | undefined, kind: FailureKind, routable: number): void {
    const { ejection, consecutiveFailures, maxEjectionPercent, stats, log } = this.#opts
    // Ejection off, closing, already out, or no longer in the set: nothing to decide.
    if (ejection.baseMs === 0 || this.#closed || this.#ejected.has(origin)) return
    if (current === undefined) return
    const upstream = this.#upstream(origin)
    if (!upstream.outlier.fail(kind, consecutiveFailures)) return
    if (!mayEject(this.#ejected.size, routable, maxEjectionPercent)) {
      stats.ejectionsCapped++
      log.debug({ instance: current.id, origin, ejected: this.#ejected.size, maxEjectionPercent }, 'outlier kept: too many instances ejected already')
      return
    }
    const ms = upstream.outlier.eject(this.#opts.now(), ejection)
    const timer = setTimeout(() => this.#readmit(origin, 'time'), ms)
    timer.unref()
    this.#ejected.set(origin, { instance: current, timer })
    stats.ejections++
    if (kind !== 'connect') stats.outlierEjections++
    this.#opts.onChange()
    if (kind === 'connect') log.warn({ instance: current.id, origin, ejectionMs: ms }, 'upstream refused a connection; ejected')
    else log.warn({ instance: current.id, origin, ejectionMs: ms, kind, failures: consecutiveFailures }, 'upstream failed repeatedly; ejected')
    this.#opts.ejected(current, { reason: kind, ms })
  }

  #readmit (origin: string, reason: 'time' | 'success'): void {
    const ejection = this.#ejected.get(origin)!
    clearTimeout(ejection.timer)
    this.#ejected.delete(origin)
    this.#upstreams.get(origin)!.outlier.readmit(this.#opts.now())
    this.#opts.stats.readmissions++
    this.#opts.onChange()
    this.#opts.log.info({ instance: ejection.instance.id, origin, reason }, 'upstream re-admitted')
    this.#opts.readmitted(ejection.instance, reason)
  }

  /** No more ejections; pending re-admission timers are cleared. */
  close (): void {
    this.#closed = true
    for (const { timer } of this.#ejected.values()) clearTimeout(timer)
    this.#ejected.clear()
  }
}
