import type { Attributes, BatchObservableCallback, MeterProvider, ObservableGauge } from '@opentelemetry/api'
import type { ConfigHandle, ConfigRefusal } from './config/live-config.js'
import type { ServiceDispatcher } from './discovery/dispatch/service-dispatcher.js'
import type { LeaderHandle } from './leader/leader-election.js'
import type { InstanceStatus } from './discovery/watch/instance.js'
import type { Watcher } from './discovery/watch/watcher.js'
import type { RequestOutcome } from './discovery/dispatch/retry-policy.js'
import type { RegistrationState } from './registration/registrar.js'

// The plugin's metrics, through @opentelemetry/api only: without an SDK every instrument is a no-op.
// Observers of what the cores already keep: gauges are read at collection time from the registrar's and
// the watchers' state, and counters follow the dispatchers' `request` and `eject` events. Nothing here
// runs on a request unless a dispatcher is observed, and then one event per request.

export const METER_NAME = '@reg/fastify-consul'

/** Every registration state, so a scrape shows the current one at 1 and the others at 0 (an enum gauge). */
const STATES: readonly RegistrationState[] = ['unregistered', 'registering', 'registered', 'deregistering', 'deregistered', 'failed']
const STATUSES: readonly InstanceStatus[] = ['passing', 'warning', 'critical']
const OUTCOMES: readonly RequestOutcome[] = ['success', 'server_error', 'failed', 'no_instance', 'aborted', 'deadline_exceeded']

/** Seconds: Prometheus' default buckets, which suit request latencies from 5 ms to 10 s. */
export const LATENCY_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
/** Time out of rotation, in seconds: from a one-probe blip (1 s back-off) to the 5 min cap. */
export const EJECTED_BUCKETS: readonly number[] = Object.freeze([1, 2, 5, 10, 30, 60, 120, 300])

/** What the metrics read; the adapter passes its registrar and discovery, tests whatever has the shape. */
export interface ConsulMetricsSources {
  /** The service this process registers, and its Consul id once known. */
  registration (): { service: string, id: string | undefined, state: RegistrationState }
  /** The running watchers (one per distinct query). */
  watchers (): ReadonlyArray<Pick<Watcher, 'all' | 'panic' | 'outageSince' | 'invalid'> & { query: Pick<Watcher['query'], 'service' | 'dc'> }>
  /** Calls `listener` after each self-heal; returns the unsubscribe function. */
  onHealed (listener: () => void): () => void
  /** Epoch ms; Date.now by default. */
  now?: () => number
}

export interface ConsulMetrics {
  /** Counts `dispatcher`'s requests, retries, ejections and latencies from now on. */
  observe (dispatcher: ServiceDispatcher): void
  /** Stops reading the sources; instruments already created stay with the provider. */
  close (): void
}

export function consulMetrics (provider: MeterProvider, sources: ConsulMetricsSources): ConsulMetrics {
  const meter = provider.getMeter(METER_NAME)
  const now = sources.now ?? Date.now

  const registrationState = meter.createObservableGauge('reg_registration_state', {
    description: 'Registration state of this instance in Consul: 1 for the current state, 0 for the others'
  })
  const instances = meter.createObservableGauge('reg_discovery_instances', {
    description: 'Instances of a discovered service as Consul last reported them, by Consul status'
  })
  const stale = meter.createObservableGauge('reg_discovery_stale_seconds', {
    description: 'Seconds since Consul last answered a watch that is serving its last known instances; 0 while live',
    unit: 's'
  })
  const invalid = meter.createObservableGauge('reg_discovery_invalid_instances', {
    description: 'Entries of a discovered service left out because their address and port make no usable origin (or the entry is malformed)'
  })
  const panic = meter.createObservableGauge('reg_discovery_panic', {
    description: '1 while too few instances are healthy and every instance not in maintenance is routed to'
  })
  // The exporter adds `_total` to monotonic counters, as Prometheus' own OTLP translation does.
  const heals = meter.createCounter('reg_registration_heals', {
    description: 'Registrations made again after the Consul agent lost this instance'
  })
  const requests = meter.createCounter('reg_dispatcher_requests', {
    description: 'Requests sent through a discovery dispatcher, by how they ended'
  })
  const retries = meter.createCounter('reg_dispatcher_retries', {
    description: 'Extra attempts a dispatcher sent to another instance'
  })
  const hedges = meter.createCounter('reg_dispatcher_hedges', {
    description: 'Second tries a dispatcher sent beside a try slower than its hedge delay, by outcome (won: its answer reached the caller first)'
  })
  const ejections = meter.createCounter('reg_dispatcher_ejections', {
    description: 'Instances ejected by a dispatcher\'s outlier detection'
  })
  const probes = meter.createCounter('reg_dispatcher_probes', {
    description: 'Requests sent as the probe of an ejected instance, by outcome (passed: re-admitted; failed: backs off again)'
  })
  const ejectedTime = meter.createHistogram('reg_dispatcher_ejected_seconds', {
    description: 'How long each ejected instance stayed out of rotation, recorded when it is re-admitted',
    unit: 's',
    advice: { explicitBucketBoundaries: [...EJECTED_BUCKETS] }
  })
  const duration = meter.createHistogram('reg_dispatcher_request_duration_seconds', {
    description: 'Time from dispatch to the end of the answer (or the final failure), retries included',
    unit: 's',
    advice: { explicitBucketBoundaries: [...LATENCY_BUCKETS] }
  })

  const registered = sources.registration()
  const serviceAttrs: Attributes = { service: registered.service }
  const unsubscribeHealed = sources.onHealed(() => heals.add(1, serviceAttrs))

  const collect: BatchObservableCallback = (result) => {
    const reg = sources.registration()
    // Before the first registration under a derived id there is no id to label the series with.
    if (reg.id !== undefined) {
      for (const state of STATES) {
        result.observe(registrationState, state === reg.state ? 1 : 0, { service: reg.service, service_id: reg.id, state })
      }
    }
    const seen = new Set<string>()
    for (const watcher of sources.watchers()) {
      const service = watcher.query.service
      // The datacenter asked (`dc`), else the one its instances are in (the local agent's): with failover
      // a service is watched once per datacenter, and each reports its own series.
      const datacenter = watcher.query.dc ?? watcher.all.instances[0]?.datacenter ?? ''
      // Two queries on one service in one datacenter (say, two tags) would report the same series twice: the first wins.
      const key = `${service}\n${watcher.query.dc ?? ''}`
      if (seen.has(key)) continue
      seen.add(key)
      const counts: Record<InstanceStatus, number> = { passing: 0, warning: 0, critical: 0 }
      for (const instance of watcher.all.instances) counts[instance.status]++
      const attrs = { service, datacenter }
      for (const status of STATUSES) result.observe(instances, counts[status], { ...attrs, status })
      // Since the outage began, not since the last answer: a blocking query answers only every `wait`.
      const since = watcher.outageSince
      result.observe(stale, since === undefined ? 0 : Math.max(0, (now() - since) / 1000), attrs)
      result.observe(panic, watcher.panic ? 1 : 0, attrs)
      result.observe(invalid, watcher.invalid, attrs)
    }
  }
  const observables: ObservableGauge[] = [registrationState, instances, stale, panic, invalid]
  meter.addBatchObservableCallback(collect, observables)

  return {
    observe (dispatcher) {
      // Attribute objects made once per dispatcher: a request allocates none.
      const service = dispatcher.service
      const attrs: Attributes = { service }
      const byOutcome = new Map(OUTCOMES.map((outcome) => [outcome, { service, outcome }]))
      dispatcher.events.on('request', (_instance, outcome, durationMs, retried) => {
        requests.add(1, byOutcome.get(outcome))
        duration.record(durationMs / 1000, attrs)
        if (retried > 0) retries.add(retried, attrs)
      })
      dispatcher.events.on('eject', () => ejections.add(1, attrs))
      // Counted when sent and again when won: `lost` is sent minus won once the requests ended.
      const sent = { service, outcome: 'sent' }
      const won = { service, outcome: 'won' }
      dispatcher.events.on('hedge', () => hedges.add(1, sent))
      dispatcher.events.on('hedgeWon', () => hedges.add(1, won))
      const passed = { service, outcome: 'passed' }
      const failed = { service, outcome: 'failed' }
      dispatcher.events.on('probe', () => probes.add(1, failed))
      dispatcher.events.on('readmit', (_instance, reason, ejectedMs) => {
        if (reason === 'probe') probes.add(1, passed)
        ejectedTime.record(ejectedMs / 1000, attrs)
      })
    },
    close () {
      unsubscribeHealed()
      meter.removeBatchObservableCallback(collect, observables)
    }
  }
}

/**
 * Configuration from KV (#28): reloads and refusals follow the handle's events, staleness is read at
 * collection time. A refusal is labelled with the KV key as written: a bounded set, the keys of a prefix.
 */
export function configMetrics (provider: MeterProvider, config: Pick<ConfigHandle, 'state' | 'source' | 'pendingRestart' | 'on' | 'off'>): { close (): void } {
  const meter = provider.getMeter(METER_NAME)
  const reloads = meter.createCounter('reg_config_reloads', {
    description: 'Configuration changes from Consul KV that validated and were applied'
  })
  const refusals = meter.createCounter('reg_config_refusals', {
    description: 'Configuration changes from Consul KV that did not validate and were refused, by KV key'
  })
  const stale = meter.createObservableGauge('reg_config_stale', {
    description: '1 while the configuration is served without Consul (unreachable, or booted from the last-known-good file)'
  })
  const pending = meter.createObservableGauge('reg_config_restart_pending', {
    description: 'Restart-required properties changed in Consul KV and waiting for a restart'
  })
  const onChange = (): void => reloads.add(1)
  const onRefused = (refusal: ConfigRefusal): void => refusals.add(1, { key: refusal.key })
  config.on('change', onChange)
  config.on('refused', onRefused)
  const collect: BatchObservableCallback = (result) => {
    // Booted from the file means stale until Consul answers: one condition covers both.
    result.observe(stale, Number(config.state === 'stale'))
    result.observe(pending, config.pendingRestart.length)
  }
  meter.addBatchObservableCallback(collect, [stale, pending])
  return {
    close () {
      config.off('change', onChange)
      config.off('refused', onRefused)
      meter.removeBatchObservableCallback(collect, [stale, pending])
    }
  }
}

/** Leader election (#28): `reg_leader{key}` is 1 while this process leads on `key`, read at collection time. */
export function leaderMetrics (provider: MeterProvider, leaders: () => Iterable<Pick<LeaderHandle, 'key' | 'isLeader'>>): { close (): void } {
  const meter = provider.getMeter(METER_NAME)
  const gauge = meter.createObservableGauge('reg_leader', {
    description: '1 while this process holds the leader key (a Consul session lock), 0 while it contends or after it released'
  })
  const collect: BatchObservableCallback = (result) => {
    for (const leader of leaders()) result.observe(gauge, Number(leader.isLeader), { key: leader.key })
  }
  meter.addBatchObservableCallback(collect, [gauge])
  return { close: () => meter.removeBatchObservableCallback(collect, [gauge]) }
}
