import { metrics, type Attributes } from '@opentelemetry/api'
import { DataPointType, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'

// A real OpenTelemetry SDK for tests of code that records through @opentelemetry/api: the plugins take
// `meterProvider`, and a test reads back what a scrape would show, without a Prometheus in between.

export interface MetricPoint {
  name: string
  attributes: Attributes
  /** The value of a counter or gauge; a histogram's sum. */
  value: number
  /** A histogram's number of recordings; undefined for counters and gauges. */
  count?: number
}

/** Collects on demand only (no export interval): a test decides when it reads. */
class OnDemandReader extends MetricReader {
  protected override async onShutdown (): Promise<void> {}
  protected override async onForceFlush (): Promise<void> {}
}

export interface TestMeter {
  provider: MeterProvider
  /** Every data point right now, flattened. */
  collect (): Promise<MetricPoint[]>
  /**
   * The summed value of `name`'s points whose attributes include `attrs`, or undefined when there is
   * no such point (so a missing metric reads differently from a zero).
   */
  value (name: string, attrs?: Attributes): Promise<number | undefined>
  shutdown (): Promise<void>
}

export function testMeter (t?: { teardown (fn: () => unknown): void }): TestMeter {
  const reader = new OnDemandReader()
  const provider = new MeterProvider({ readers: [reader] })
  t?.teardown(() => provider.shutdown())
  async function collect (): Promise<MetricPoint[]> {
    const { resourceMetrics, errors } = await reader.collect()
    if (errors.length > 0) throw errors[0]
    const points: MetricPoint[] = []
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        for (const point of metric.dataPoints) {
          if (metric.dataPointType === DataPointType.HISTOGRAM) {
            // `sum` is optional in the type only for instruments that may record negatives; ours never do.
            const h = point.value as { sum: number, count: number }
            points.push({ name: metric.descriptor.name, attributes: point.attributes, value: h.sum, count: h.count })
          } else {
            points.push({ name: metric.descriptor.name, attributes: point.attributes, value: point.value as number })
          }
        }
      }
    }
    return points
  }
  return {
    provider,
    collect,
    async value (name, attrs = {}) {
      const matching = (await collect()).filter((p) => p.name === name && Object.entries(attrs).every(([k, v]) => p.attributes[k] === v))
      return matching.length === 0 ? undefined : matching.reduce((sum, p) => sum + p.value, 0)
    },
    shutdown: () => provider.shutdown()
  }
}

/**
 * A testMeter set as the process's global MeterProvider, read every `scrapeMs` like a scraper would:
 * what a process started with `--import` of this (see bench's metrics scenario) records its metrics
 * into, without a line of its own changed. Plugins read the global provider when they are registered.
 */
export function globalTestMeter (scrapeMs = 1000): TestMeter & { stop (): void } {
  const meter = testMeter()
  metrics.setGlobalMeterProvider(meter.provider)
  const timer = setTimeout(() => {
    meter.collect().finally(() => timer.refresh())
  }, scrapeMs)
  timer.unref()
  return { ...meter, stop: () => clearTimeout(timer) }
}
