import type { FailureKind } from './failure.js'

/**
 * Whether one more instance may be ejected from a pool of `pool` routable instances while `ejected`
 * already are. Envoy's documented rule: the first ejection always happens ("will eject at least one
 * host regardless of the value"), later ones only while the ejected share stays within
 * `maxPercent`. At 50 % a pool of two or more therefore always keeps at least half; a pool of one
 * can lose its only instance, and then the dispatcher routes to the ejected ones (Envoy's panic),
 * so ejection alone never leaves nothing to try.
 */
export function mayEject (ejected: number, pool: number, maxPercent: number): boolean {
  if (ejected === 0) return pool > 0
  return ejected + 1 <= Math.floor((pool * maxPercent) / 100)
}

export interface EjectionTimes {
  /** The first ejection's length, in ms (Envoy's base_ejection_time). */
  baseMs: number
  /** The longest ejection, in ms; never below `baseMs` (as in Envoy). */
  maxMs: number
}

/**
 * One instance's outlier record: failures in a row and how often it was ejected. Pure: every call that
 * depends on time is given the time.
 */
export class OutlierState {
  /** Failures in a row since the last success. */
  failures = 0
  /** Ejections that still lengthen the next one (they wear off while the instance behaves). */
  ejections = 0
  #admittedAt = Number.NEGATIVE_INFINITY

  /** A success: the failure streak ends. */
  succeed (): void {
    this.failures = 0
  }

  /** A failure of this kind: true when it makes the instance an outlier. */
  fail (kind: FailureKind, threshold: number): boolean {
    this.failures++
    return kind === 'connect' || this.failures >= threshold
  }

  /**
   * Ejects the instance at `now` and returns for how long: base × the number of recent ejections,
   * capped (Envoy). Each base period spent admitted since the last ejection forgets one of them, so an
   * instance that failed once a day is not ejected for the maximum.
   */
  eject (now: number, times: EjectionTimes): number {
    const forgotten = Math.floor((now - this.#admittedAt) / times.baseMs)
    this.ejections = Math.max(0, this.ejections - forgotten) + 1
    this.failures = 0
    return Math.min(Math.max(times.baseMs, times.maxMs), times.baseMs * this.ejections)
  }

  /** Back in rotation at `now`, by time or by a success. */
  readmit (now: number): void {
    this.#admittedAt = now
  }
}
