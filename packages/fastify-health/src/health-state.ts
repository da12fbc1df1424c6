import type { CheckResult, CheckStatus } from './checks.js'
import type { PressureMetric } from './pressure.js'

// Folds check results, resource pressure and draining into one cached, immutable status, and tells
// listeners when that status changes. Reading it costs a property access; all work happens on writes.

export interface HealthStatus {
  /**
   * `critical` if draining or any critical check fails; `warning` if a check fails or the instance is under
   * pressure (unless pressure is configured as critical); else `passing`.
   */
  readonly status: CheckStatus
  readonly draining: boolean
  readonly underPressure: boolean
  /** The thresholds exceeded in the latest sample, empty when not under pressure. */
  readonly pressure: readonly PressureMetric[]
  /** Checks that have reported at least once, by name. */
  readonly checks: Readonly<Record<string, CheckResult>>
}

export type HealthListener = (status: HealthStatus) => void

/** The part of a pino logger the state needs. */
export interface StateLogger {
  debug (obj: object, msg: string): void
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
}

const NO_PRESSURE: readonly PressureMetric[] = Object.freeze([])

function sameMetrics (a: readonly PressureMetric[], b: readonly PressureMetric[]): boolean {
  return a.length === b.length && a.every((metric, i) => metric === b[i])
}

export class HealthState {
  readonly #log: StateLogger
  readonly #results = new Map<string, CheckResult>()
  readonly #listeners = new Set<HealthListener>()
  #draining = false
  #pressure = NO_PRESSURE
  #snapshot: HealthStatus

  readonly #pressureStatus: CheckStatus

  /** `pressureStatus`: what pressure makes the aggregate; warning by default, so overload is never an outage. */
  constructor (log: StateLogger, pressureStatus: 'warning' | 'critical' = 'warning') {
    this.#log = log
    this.#pressureStatus = pressureStatus
    this.#snapshot = this.#build()
  }

  snapshot (): HealthStatus {
    return this.#snapshot
  }

  setResult (name: string, result: CheckResult): void {
    const previous = this.#results.get(name)
    this.#results.set(name, result)
    // Log transitions, not runs: a check that keeps failing is logged once, not on every interval.
    if (previous?.status !== result.status || previous.starting !== result.starting) {
      const entry = { check: name, status: result.status, output: result.output, critical: result.critical }
      if (result.starting === true) this.#log.info(entry, `health check "${name}" is ${result.status}, within its start period (not counted)`)
      else if (result.status !== 'passing') this.#log.warn(entry, `health check "${name}" is ${result.status}`)
      else if (previous !== undefined) this.#log.info(entry, `health check "${name}" is passing again`)
      else this.#log.debug(entry, `health check "${name}" is passing`)
    }
    this.#update()
  }

  /** Idempotent: draining is one-way, the app is on its way out. */
  drain (): void {
    if (this.#draining) return
    this.#draining = true
    this.#log.info({}, 'draining: readiness reports critical from now on')
    this.#update()
  }

  setPressure (metrics: readonly PressureMetric[]): void {
    if (sameMetrics(metrics, this.#pressure)) return
    const was = this.#pressure.length > 0
    this.#pressure = metrics.length === 0 ? NO_PRESSURE : Object.freeze([...metrics])
    if (!was) this.#log.warn({ pressure: this.#pressure }, 'under pressure')
    else if (metrics.length === 0) this.#log.info({}, 'no longer under pressure')
    this.#update()
  }

  onChange (listener: HealthListener): () => void {
    // A wrapper per subscription, so subscribing one function twice gives two independent unsubscribes.
    const entry: HealthListener = (status) => listener(status)
    this.#listeners.add(entry)
    return () => { this.#listeners.delete(entry) }
  }

  #build (): HealthStatus {
    const underPressure = this.#pressure.length > 0
    // Pressure is a signal that the whole fleet may share (a flood reaches every replica): reporting it as
    // critical would let Consul drop every instance at once. As a warning, callers shift load instead.
    let status: CheckStatus = this.#draining ? 'critical' : underPressure ? this.#pressureStatus : 'passing'
    for (const result of this.#results.values()) {
      // A check in its start period is shown but not counted (see CheckOptions.grace).
      if (result.starting === true) continue
      if (result.status === 'critical') status = 'critical'
      else if (result.status === 'warning' && status === 'passing') status = 'warning'
    }
    return Object.freeze({
      status,
      draining: this.#draining,
      underPressure,
      pressure: this.#pressure,
      // fromEntries defines own properties, so a check named "__proto__" stays an ordinary key.
      checks: Object.freeze(Object.fromEntries(this.#results))
    })
  }

  #update (): void {
    const previous = this.#snapshot
    const next = this.#build()
    this.#snapshot = next
    if (previous.status === next.status && previous.draining === next.draining) return
    for (const listener of this.#listeners) {
      // A listener that changed the state again (drain() from a listener, say) has already delivered the
      // newer status to everyone; delivering this older one afterwards would reorder the updates.
      if (this.#snapshot !== next) return
      try {
        listener(next)
      } catch (err) {
        this.#log.error({ err }, 'a health onChange listener threw')
      }
    }
  }
}
