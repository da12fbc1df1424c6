import { HostMetrics } from '@opentelemetry/host-metrics'
import { RuntimeNodeInstrumentation } from '@opentelemetry/instrumentation-runtime-node'
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import type { FastifyPluginAsync } from 'fastify'

// The OpenTelemetry SDK for this process, read by Prometheus at GET /metrics on the app's admin listener
// (its registered address, at the port in its meta `metrics_port`, so a scraper that finds it in Consul reads it). The plugins record through
// @opentelemetry/api into the provider they are given; Node's runtime and process metrics come from
// OpenTelemetry's own packages. One provider per app, not the global one: tests build many apps in one process.

/** The Prometheus text format the serializer writes (version 0.0.4). */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

export interface AppMetrics {
  /** What the plugins record into. */
  readonly provider: MeterProvider
  /** Everything collected now, as Prometheus text. */
  scrape (): Promise<string>
  /** Stops the runtime instrumentation and the provider. */
  shutdown (): Promise<void>
}

export function appMetrics (): AppMetrics {
  // A pull reader: collects only when scraped. Its own HTTP server stays off; the app serves /metrics.
  const exporter = new PrometheusExporter({ preventServerStart: true })
  const provider = new MeterProvider({ readers: [exporter] })
  // Event-loop delay and utilisation, heap, GC: what under-pressure decides on, over time.
  const runtime = new RuntimeNodeInstrumentation()
  runtime.setMeterProvider(provider)
  runtime.enable()
  // CPU time and resident memory of this process only (the host groups read /proc for the whole machine).
  new HostMetrics({ meterProvider: provider, metricGroups: ['process.cpu', 'process.memory'] }).start()
  const serializer = new PrometheusSerializer()
  return {
    provider,
    async scrape () {
      const { resourceMetrics, errors } = await exporter.collect()
      // A failing callback loses its own series only; the rest of the scrape is still worth serving.
      for (const err of errors) process.emitWarning(err as Error)
      return serializer.serialize(resourceMetrics)
    },
    async shutdown () {
      runtime.disable()
      await provider.shutdown()
    }
  }
}

/** `GET /metrics`. Not wrapped in fastify-plugin: one route, nothing to decorate. */
export const metricsRoute: FastifyPluginAsync<{ metrics: AppMetrics }> = async function metricsRoute (fastify, { metrics }) {
  fastify.get('/metrics', async (_request, reply) => {
    reply.type(PROMETHEUS_CONTENT_TYPE)
    return metrics.scrape()
  })
}
