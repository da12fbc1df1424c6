/** How long a request waits before it is hedged: fixed, or a percentile of recent answers. */
export interface HedgeSettings {
  /** A fixed delay in ms, or undefined to adapt to the service's recent latency. */
  delayMs: number | undefined
  /** Which quantile of recent latencies the adaptive delay is, from 0.5 to 0.999. Default 0.95. */
  percentile: number
  /** The adaptive delay's floor and cap, in ms; the cap is also the delay until enough answers were seen. */
  minDelayMs: number
  maxDelayMs: number
}

/** Answers kept: enough for a stable p95 (about 13 above it), few enough to follow a change in seconds under load. */
const WINDOW = 256
/** Below this many answers a percentile is noise: the cap is used. */
const MIN_SAMPLES = 20
/** Sorting on every read would cost O(n log n) per request; every 16th answer refreshes the estimate. */
const REFRESH_EVERY = 16

/**
 * Finagle's backup-request delay and gRPC's hedging delay, adaptive: the time after which only the
 * slowest (1 − percentile) of a service's answers are still out. Hedging then costs about that share in
 * extra requests, and turns every slow outlier into the better of two tries.
 */
export class HedgeDelay {
  readonly #settings: HedgeSettings
  readonly #samples = new Float64Array(WINDOW)
  #count = 0
  #next = 0
  #sinceRefresh = 0
  #estimate: number

  constructor (settings: HedgeSettings) {
    this.#settings = settings
    this.#estimate = settings.delayMs ?? settings.maxDelayMs
  }

  /** The delay now, in ms. */
  get ms (): number {
    return this.#estimate
  }

  /** Records the time to response headers of an answer that was not an error. */
  observe (ms: number): void {
    const s = this.#settings
    if (s.delayMs !== undefined) return
    this.#samples[this.#next] = ms
    this.#next = (this.#next + 1) % WINDOW
    if (this.#count < WINDOW) this.#count++
    if (++this.#sinceRefresh < REFRESH_EVERY || this.#count < MIN_SAMPLES) return
    this.#sinceRefresh = 0
    const sorted = this.#samples.slice(0, this.#count).sort()
    const quantile = sorted[Math.min(this.#count - 1, Math.floor(s.percentile * this.#count))]!
    this.#estimate = Math.min(s.maxDelayMs, Math.max(s.minDelayMs, quantile))
  }
}
