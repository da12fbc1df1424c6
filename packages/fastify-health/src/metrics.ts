import type { Attributes, BatchObservableCallback, MeterProvider } from '@opentelemetry/api'
import type { CheckResult, CheckStatus } from './checks.js'
import type { HealthStatus } from './health-state.js'

// The plugin's metrics, through @opentelemetry/api only: without an SDK every instrument is a no-op.
// The status gauges read the cached snapshot at collection time; the duration histogram is fed by the
// scheduler's result callback, once per check run, never per request.

export const METER_NAME = '@reg/fastify-health'

/** Consul's three states as one number, worst highest, so `max()` over a fleet reads naturally. */
export const STATUS_VALUE: Readonly<Record<CheckStatus, number>> = Object.freeze({ passing: 0, warning: 1, critical: 2 })

/** Seconds: from a 1 ms in-memory check to a 10 s dependency timeout. */
const CHECK_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export interface HealthMetrics {
  /** Records one check run. */
  checked (name: string, result: CheckResult): void
  /** Stops reading the status; instruments already created stay with the provider. */
  close (): void
}

export function healthMetrics (provider: MeterProvider, status: () => HealthStatus): HealthMetrics {
  const meter = provider.getMeter(METER_NAME)
  const overall = meter.createObservableGauge('reg_health_status', {
    description: 'Readiness as Consul reads it: 0 passing, 1 warning, 2 critical (draining included)'
  })
  const byCheck = meter.createObservableGauge('reg_health_check_status', {
    description: 'Latest result of each health check: 0 passing, 1 warning, 2 critical'
  })
  const duration = meter.createHistogram('reg_health_check_duration_seconds', {
    description: 'How long each health check run took (a timed-out run counts its timeout)',
    unit: 's',
    advice: { explicitBucketBoundaries: CHECK_BUCKETS }
  })
  const collect: BatchObservableCallback = (result) => {
    const snapshot = status()
    result.observe(overall, STATUS_VALUE[snapshot.status])
    for (const [check, r] of Object.entries(snapshot.checks)) result.observe(byCheck, STATUS_VALUE[r.status], { check })
  }
  meter.addBatchObservableCallback(collect, [overall, byCheck])
  // One attribute object per check name, made on its first run: check names are the app's, a fixed few.
  const attrs = new Map<string, Attributes>()
  return {
    checked (name, result) {
      let a = attrs.get(name)
      if (a === undefined) {
        a = { check: name }
        attrs.set(name, a)
      }
      duration.record(result.durationMs / 1000, a)
    },
    close () {
      meter.removeBatchObservableCallback(collect, [overall, byCheck])
    }
  }
}
