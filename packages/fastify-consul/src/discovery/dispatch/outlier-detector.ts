import type { Logger } from '../../util/logger.js'
import { UpstreamLoad } from '../lb/upstream-load.js'
import type { Instance, InstanceStatus } from '../watch/instance.js'
import type { FailureKind } from './failure.js'
import { OutlierState, mayEject, type EjectionTimes } from './outlier.js'
import type { DispatcherStats, ReadmitReason } from './service-dispatcher.js'

/** What the detector counts, a slice of the dispatcher's stats (it writes into the dispatcher's object). */
export type EjectionStats = Pick<DispatcherStats, 'ejections' | 'outlierEjections' | 'ejectionsCapped' | 'readmissions' | 'probes' | 'probeFailures'>

export interface OutlierDetectorOptions {
  ejection: EjectionTimes
  consecutiveFailures: number
  maxEjectionPercent: number
  /** The slow-start window of an instance that joins the set, in ms (0: none); see UpstreamLoad.warmUp. */
  slowStartMs: number
  now: () => number
  log: Logger
  stats: EjectionStats
  /** An instance was ejected for `ms` (the dispatcher's `eject` event). */
  ejected: (instance: Instance, ejection: { reason: FailureKind, ms: number }) => void
  /** An ejected instance is back after `ejectedMs` out (the dispatcher's `readmit` event). */
  readmitted: (instance: Instance, reason: ReadmitReason, ejectedMs: number) => void
  /** A probe failed: out again for `ms` (the dispatcher's `probe` event). */
  probeFailed: (instance: Instance, ms: number) => void
  /** The admitted set changed: the dispatcher rebuilds its balancer. */
  onChange: () => void
}

/** What the dispatcher knows about one upstream beyond Consul's view: live load and failure record. */
interface Upstream {
  readonly load: UpstreamLoad
  readonly outlier: OutlierState
}

/**
 * Where an ejected instance stands: backing off (`ejected`), waiting for the next request to probe it
 * (`half-open`), or with that probe in flight (`probing`). Only one probe is in flight at a time.
 */
type Phase = 'ejected' | 'half-open' | 'probing'

interface Ejection {
  instance: Instance
  phase: Phase
  /** When the back-off ends (phase `ejected`). */
  timer: NodeJS.Timeout | undefined
  /** When the ejection began (the first one, not the last failed probe), for the time spent out. */
  since: number
  /** Consul's status when last seen: critical → passing is a reason to probe at once. */
  status: InstanceStatus
  /** The attempt that is the probe (phase `probing`). */
  probe: object | undefined
}

/**
 * Outlier detection over one dispatcher's upstreams, by origin: each upstream's live load and failure
 * record, the ejections with their back-off timers and probes, and the max-ejection cap. The dispatcher
 * tells it which origins are live and routable, which attempts go where and how they end; it says which
 * origins are out of rotation and which one the next request should probe.
 *
 * Envoy ejects for base × ejections and re-admits on a timer, untested: a replica that stalled 8 s
 * stays out 30 s or more, and one still broken comes back to fail real requests. Here an ejection is
 * a back-off after which the next request is a probe (Finagle, Linkerd): a good answer re-admits the
 * instance at once, a failure ejects it again for twice as long.
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

  /** Out of rotation: ejected, awaiting its probe, or probed right now (the balancer leaves it out). */
  isEjected (origin: string): boolean {
    return this.#ejected.has(origin)
  }

  get ejected (): readonly Instance[] {
    return [...this.#ejected.values()].map((e) => e.instance)
  }

  /** The origin the next request should probe: the longest-waiting half-open one, if any. */
  probeCandidate (): string | undefined {
    for (const [origin, e] of this.#ejected) if (e.phase === 'half-open') return origin
    return undefined
  }

  #upstream (origin: string): Upstream {
    let upstream = this.#upstreams.get(origin)
    if (upstream === undefined) {
      upstream = { load: new UpstreamLoad(), outlier: new OutlierState() }
      // A record is made when the instance joins the set (the balancer asks for its load) and dropped
      // when it leaves, so a replica that restarts warms up again. A readmission does not: the probe
      // proved a process that was warm before it stalled.
      upstream.load.warmUp(this.#opts.now(), this.#opts.slowStartMs)
      this.#upstreams.set(origin, upstream)
    }
    return upstream
  }

  /**
   * Forgets origins that left: their ejections end, their records go (attempts in flight keep their
   * load). An ejected instance whose Consul checks went from critical back to passing is probed at once:
   * Consul saw it recover, so waiting out the back-off only wastes capacity. The caller rebalances after.
   */
  retain (live: ReadonlyMap<string, Instance>): void {
    for (const [origin, ejection] of this.#ejected) {
      const now = live.get(origin)
      if (now === undefined) {
        clearTimeout(ejection.timer)
        this.#ejected.delete(origin)
        continue
      }
      const recovered = ejection.status === 'critical' && now.status === 'passing'
      ejection.status = now.status
      ejection.instance = now
      if (recovered && ejection.phase === 'ejected') this.#halfOpen(origin, 'consul', false)
    }
    for (const origin of this.#upstreams.keys()) if (!live.has(origin)) this.#upstreams.delete(origin)
  }

  /** An attempt goes to `origin`: when that origin awaits its probe, this attempt is the probe. */
  sending (origin: string, attempt: object): void {
    const ejection = this.#ejected.get(origin)
    if (ejection?.phase !== 'half-open') return
    ejection.phase = 'probing'
    ejection.probe = attempt
    this.#opts.stats.probes++
    this.#opts.log.debug({ instance: ejection.instance.id, origin }, 'probing an ejected upstream')
  }

  /**
   * An attempt to `origin` ended. When it was the probe and neither succeeded nor failed (the caller
   * aborted; a 5xx to a request that is not idempotent says nothing), the next request probes again.
   * Deferred a microtask: the verdict of an attempt that errored is reported just after it ends.
   */
  settled (origin: string, attempt: object): void {
    const ejection = this.#ejected.get(origin)
    if (ejection?.probe !== attempt) return
    queueMicrotask(() => {
      if (ejection.probe !== attempt || this.#ejected.get(origin) !== ejection) return
      ejection.phase = 'half-open'
      ejection.probe = undefined
    })
  }

  succeeded (origin: string): void {
    // An instance that left the set while the attempt was in flight has no record any more.
    const upstream = this.#upstreams.get(origin)
    if (upstream === undefined) return
    upstream.outlier.succeed()
    const ejection = this.#ejected.get(origin)
    if (ejection !== undefined) this.#readmit(origin, ejection.phase === 'probing' ? 'probe' : 'success')
  }

  /**
   * A failure at `origin`, whose current instance is `current` (undefined: no longer in the set), of
   * `routable` instances. A refused connection and a per-try timeout (`atOnce`) eject at once, within
   * the cap: with a 1 s back-off and a probe, ejecting is cheap, and each request it saves from a stalled
   * replica saves its caller the whole timeout. Other failures eject after `consecutiveFailures` in a row.
   */
  failed (origin: string, current: Instance | undefined, kind: FailureKind, routable: number, atOnce = false, retryAfterMs?: number): void {
    const { ejection, consecutiveFailures, maxEjectionPercent, stats, log } = this.#opts
    // Ejection off, closing, or no longer in the set: nothing to decide.
    if (ejection.baseMs === 0 || this.#closed || current === undefined) return
    const out = this.#ejected.get(origin)
    if (out !== undefined) {
      // While ejected, only the probe's failure counts (anything else was in flight before the ejection).
      if (out.phase === 'probing') this.#probeFailed(origin, out)
      return
    }
    const upstream = this.#upstream(origin)
    if (!upstream.outlier.fail(kind, consecutiveFailures, atOnce)) return
    if (!mayEject(this.#ejected.size, routable, maxEjectionPercent)) {
      stats.ejectionsCapped++
      log.debug({ instance: current.id, origin, ejected: this.#ejected.size, maxEjectionPercent }, 'outlier kept: too many instances ejected already')
      // The cap keeps a failing instance in because others are out: the ones out may have recovered
      // since (after a whole-fleet outage, the one ejected first is often back before the last to fail).
      // Each is probed by the next request instead of at the end of its back-off, so a recovered one
      // returns and makes room to eject this one; a probe that fails backs off as usual. The cost: while
      // more than the cap is failing, each capped failure has the ejected ones probed again (one request
      // each, retried elsewhere if it fails). Rate-limiting it to once per `ejectionMs` was tried: a
      // partial recovery then failed half its requests for up to that long (tests: retry-throttle).
      for (const [out, e] of this.#ejected) if (e.phase === 'ejected') this.#halfOpen(out, 'capped', true)
      return
    }
    const computed = upstream.outlier.eject(this.#opts.now(), ejection)
    // An instance that said how long to leave it alone (Retry-After) is left that long, within the cap.
    const ms = retryAfterMs === undefined ? computed : Math.min(retryAfterMs, ejection.maxMs)
    this.#ejected.set(origin, { instance: current, phase: 'ejected', timer: this.#backOff(origin, ms), since: this.#opts.now(), status: current.status, probe: undefined })
    stats.ejections++
    if (kind !== 'connect') stats.outlierEjections++
    this.#opts.onChange()
    if (retryAfterMs !== undefined) log.warn({ instance: current.id, origin, backoffMs: ms }, 'upstream asked to be left alone (Retry-After); ejected')
    else if (kind === 'connect') log.warn({ instance: current.id, origin, backoffMs: ms }, 'upstream refused a connection; ejected')
    else if (atOnce) log.warn({ instance: current.id, origin, backoffMs: ms }, 'upstream stalled past the per-try timeout; ejected')
    else log.warn({ instance: current.id, origin, backoffMs: ms, kind, failures: consecutiveFailures }, 'upstream failed repeatedly; ejected')
    this.#opts.ejected(current, { reason: kind, ms })
  }

  /**
   * A try at `origin` lost the race to a later try of its request (a hedge answered first): a slow
   * failure, counted as a timeout. When it was the probe, the instance backs off again for the same time,
   * not twice as long: a hedged probe cost its caller only the hedge delay, so probing a stalled instance
   * once per back-off is cheap, and doubling would keep it out for seconds after it recovers (a replica
   * frozen 8 s came back 7–9 s after its thaw in P23, against 0.3 s for HAProxy, until this).
   */
  outpaced (origin: string, current: Instance | undefined, routable: number): void {
    const out = this.#ejected.get(origin)
    // An ejection exists only while ejection is on and the detector open (close() clears them).
    if (out?.phase === 'probing') {
      this.#probeFailed(origin, out, false)
      return
    }
    this.failed(origin, current, 'timeout', routable)
  }

  #backOff (origin: string, ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.#halfOpen(origin, 'time', true), ms)
    timer.unref()
    return timer
  }

  #halfOpen (origin: string, reason: 'time' | 'consul' | 'capped', rebalance: boolean): void {
    const ejection = this.#ejected.get(origin)!
    clearTimeout(ejection.timer)
    ejection.timer = undefined
    ejection.phase = 'half-open'
    this.#opts.log.debug({ instance: ejection.instance.id, origin, reason }, 'ejected upstream awaits its probe')
    // It stays out of the balancer: the dispatcher hands the next request to it as the probe.
    if (rebalance) this.#opts.onChange()
  }

  /** Its probe failed: out again, for twice as long unless `double` is false (a probe outpaced by a hedge). */
  #probeFailed (origin: string, ejection: Ejection, double = true): void {
    const { stats, log } = this.#opts
    const ms = this.#upstreams.get(origin)!.outlier.probeFailed(this.#opts.ejection, double)
    ejection.phase = 'ejected'
    ejection.probe = undefined
    ejection.timer = this.#backOff(origin, ms)
    stats.probeFailures++
    log.warn({ instance: ejection.instance.id, origin, backoffMs: ms }, 'probe failed; upstream stays ejected')
    this.#opts.probeFailed(ejection.instance, ms)
  }

  #readmit (origin: string, reason: ReadmitReason): void {
    const ejection = this.#ejected.get(origin)!
    clearTimeout(ejection.timer)
    this.#ejected.delete(origin)
    const now = this.#opts.now()
    const upstream = this.#upstreams.get(origin)!
    upstream.outlier.readmit(now)
    // The latency estimate describes the stall the instance just proved over; kept, least-request
    // would starve the instance for tens of seconds while it decays. It starts afresh, as a new one.
    upstream.load.forget()
    this.#opts.stats.readmissions++
    this.#opts.onChange()
    const ejectedMs = now - ejection.since
    this.#opts.log.info({ instance: ejection.instance.id, origin, reason, ejectedMs: Math.round(ejectedMs) }, 'upstream re-admitted')
    this.#opts.readmitted(ejection.instance, reason, ejectedMs)
  }

  /** No more ejections; pending back-off timers are cleared. */
  close (): void {
    this.#closed = true
    for (const { timer } of this.#ejected.values()) clearTimeout(timer)
    this.#ejected.clear()
  }
}
