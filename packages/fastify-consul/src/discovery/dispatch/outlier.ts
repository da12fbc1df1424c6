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
  /** The first back-off of an ejection, in ms: after it, one request probes the instance. */
  baseMs: number
  /** The longest back-off, in ms; never below `baseMs` (as in Envoy). */
  maxMs: number
}

/**
 * How long an instance must stay admitted for one of its past ejections to be forgotten: Envoy's default
 * base ejection time, so an old ejection wears off at the pace Envoy would have re-admitted it.
 */
export const EJECTION_MEMORY_MS = 30_000

/**
 * One instance's outlier record: failures in a row, recent ejections and failed probes. Pure: every
 * call that depends on time is given the time.
 *
 * An ejection is a back-off, not a sentence (Finagle's failure accrual, Linkerd's circuit breaker): after
 * it one request probes the instance; a success re-admits it, a failure ejects it again for twice as
 * long. The first back-off is short (base × the instance's recent ejections) because most stalls are
 * short (a GC pause, a blip); an instance that keeps failing its probes backs off exponentially, and
 * one that keeps getting ejected (a flapping replica) starts each ejection further out.
 */
export class OutlierState {
  /** Failures in a row since the last success. */
  failures = 0
  /** Ejections that still lengthen the next back-off (one wears off per EJECTION_MEMORY_MS admitted). */
  ejections = 0
  /** Probes failed in a row during the current ejection. */
  failedProbes = 0
  #admittedAt = Number.NEGATIVE_INFINITY

  /** A success: the failure streak ends. */
  succeed (): void {
    this.failures = 0
  }

  /** A failure of this kind: true when it makes the instance an outlier (`atOnce`: whatever the streak). */
  fail (kind: FailureKind, threshold: number, atOnce = false): boolean {
    this.failures++
    return atOnce || kind === 'connect' || this.failures >= threshold
  }

  /** Ejects the instance at `now`; returns the back-off before its first probe (base × recent ejections, capped). */
  eject (now: number, times: EjectionTimes): number {
    const forgotten = Math.floor((now - this.#admittedAt) / EJECTION_MEMORY_MS)
    this.ejections = Math.max(0, this.ejections - forgotten) + 1
    this.failures = 0
    this.failedProbes = 0
    return this.#backoff(times)
  }

  /** Its probe failed: the back-off before the next one doubles (unless `double` is false), capped. */
  probeFailed (times: EjectionTimes, double = true): number {
    if (double) this.failedProbes++
    this.failures = 0
    return this.#backoff(times)
  }

  /** Back in rotation at `now`, after a successful probe or another request's success. */
  readmit (now: number): void {
    this.#admittedAt = now
    this.failedProbes = 0
  }

  #backoff (times: EjectionTimes): number {
    // 2 ** n reaches Infinity long before n overflows; Math.min caps it either way.
    return Math.min(Math.max(times.baseMs, times.maxMs), times.baseMs * this.ejections * 2 ** this.failedProbes)
  }
}
