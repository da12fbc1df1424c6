/** How fast an old latency sample fades: Finagle's and Linkerd's peak-EWMA decay time. */
export const DECAY_MS = 10_000

/**
 * How long a latency estimate describes its instance. Peak EWMA over power of two choices starves the
 * instance with the highest estimate: it loses every comparison, so it gets no sample that could lower
 * it, and its estimate only decays (by e every 10 s) while the others' fall towards what they measure at
 * the same pace. One slow answer, or a burst that met it cold, then kept a healthy replica of three
 * without traffic for τ·ln(1 + lead ÷ latency): 15 s for a 7 ms lead over 2 ms answers (bench P23: a
 * thawed replica served nothing for 4–5 s after its thaw, having been starved since the warm-up burst).
 * An idle instance with no sample for this long is re-measured instead: it costs nothing, so the next
 * comparison it is in sends it one real request (no extra load: a request routed, not added), and that
 * answer replaces the estimate. An instance still slow is priced out again by that answer, at most one
 * request per second; one frozen is priced out by the request's age in flight, and hedged or ejected.
 */
export const STALE_MS = 1000

/** Envoy's slow-start floor (`min_weight_percent`): a warming instance is still picked at this share of its weight. */
export const SLOW_START_FLOOR = 0.1

/**
 * The cost of an instance that has a request in flight but never answered one: large enough that any
 * measured instance wins, ordered by outstanding requests among unmeasured ones (Finagle's penalty).
 */
const PENALTY = 1e12

/**
 * The live load of one upstream, written by the dispatcher as attempts start and end, and read by the
 * least-request balancer on every pick. Plain numbers on one object: reading a cost allocates nothing.
 *
 * Latency is Finagle's peak EWMA: a sample above the estimate replaces it at once, a sample below it
 * is averaged in with a weight that depends on the time since the last one, and the estimate decays
 * towards zero while nothing is measured. On top of that, the mean age of the requests still in
 * flight counts as a latency in progress: a replica that froze answers nothing, so its EWMA would stay
 * flattering while its requests pile up; their age makes it look as slow as it is within milliseconds.
 */
export class UpstreamLoad {
  /** Attempts sent and not yet ended (answered, failed or aborted). */
  outstanding = 0
  #startSum = 0
  #ewma = 0
  #stamp = 0
  #measured = false
  /** Slow start: when the window began and how long it lasts (0: warm). */
  #warmFrom = 0
  #warmWindow = 0

  /** The instance joined the set at `now`: it is warming up for `windowMs` (nothing when 0). */
  warmUp (now: number, windowMs: number): void {
    this.#warmFrom = now
    this.#warmWindow = windowMs
  }

  /**
   * Envoy's slow-start factor at `now`: 1 once warm; while warming, the elapsed share of the window
   * (counted from at least 1 s, as Envoy does) with a floor of 10 %. Linear: Envoy's aggression 1.
   * The first call after the window ends it and drops the latency measured while cold, so the instance
   * is judged on its first warm answer, not on a JIT-cold first request.
   */
  warmth (now: number): number {
    const window = this.#warmWindow
    if (window === 0) return 1
    const elapsed = now - this.#warmFrom
    if (elapsed >= window) {
      this.#warmWindow = 0
      this.forget()
      return 1
    }
    const share = Math.max(elapsed, 1000) / window
    return share > SLOW_START_FLOOR ? share : SLOW_START_FLOOR
  }

  /** An attempt started at `now`. */
  begin (now: number): void {
    this.outstanding++
    this.#startSum += now
  }

  /** The attempt that began at `startedAt` ended. */
  end (startedAt: number): void {
    this.outstanding--
    // At zero, reset the sum so float rounding cannot accumulate across bursts.
    this.#startSum = this.outstanding === 0 ? 0 : this.#startSum - startedAt
  }

  /** A latency sample (ms), taken at `now`: time to response headers, or how long a try lost a race for. */
  observe (rtt: number, now: number): void {
    // After a silence of STALE_MS the sample replaces the estimate: it describes the instance as it is now.
    const w = now - this.#stamp < STALE_MS ? Math.exp(-(now - this.#stamp) / DECAY_MS) : 0
    this.#ewma = rtt > this.#ewma * w ? rtt : this.#ewma * w + rtt * (1 - w)
    this.#stamp = now
    this.#measured = true
  }

  /** Drops the latency estimate: the instance is priced as a new one until its next answer. */
  forget (): void {
    this.#ewma = 0
    this.#measured = false
  }

  /** The estimated latency (ms) at `now`: the decayed peak EWMA, or the age of what is in flight if larger. */
  latency (now: number): number {
    const age = this.outstanding === 0 ? 0 : now - this.#startSum / this.outstanding
    const ewma = this.#decayed(now)
    return age > ewma ? age : ewma
  }

  /**
   * Finagle's load: estimated latency × (outstanding + 1). An instance never measured costs 0 while
   * idle (so a new instance gets a first request at once) and the penalty while that request is in
   * flight (so it is not flooded before it answered once). One idle with an estimate older than
   * STALE_MS costs 0 as well, to be measured again; while that request is out, its old estimate and the
   * request's age price it, so it gets one request, not a flood.
   */
  cost (now: number): number {
    if (!this.#measured) return this.outstanding === 0 ? 0 : PENALTY + this.outstanding
    if (this.outstanding === 0 && now - this.#stamp >= STALE_MS) return 0
    return this.latency(now) * (this.outstanding + 1)
  }

  /**
   * The cost while warming up: what is in flight now, with no memory of past answers. (1 + their mean
   * age in ms) × their count: 0 when idle, and a frozen instance's stuck requests age it out of every
   * comparison within milliseconds, as they do in `cost`.
   */
  inFlightCost (now: number): number {
    const n = this.outstanding
    return n === 0 ? 0 : (1 + now - this.#startSum / n) * n
  }

  /** The estimate without a new sample: it fades towards zero, so a replica that was slow once is tried again. */
  #decayed (now: number): number {
    return this.#ewma * Math.exp(-(now - this.#stamp) / DECAY_MS)
  }
}
