import type { FastifyUnderPressureOptions } from '@fastify/under-pressure'

// Maps our thresholds onto @fastify/under-pressure and explains its verdict. under-pressure does the sampling
// (event-loop delay histogram, ELU, memory) on its own timer; we only read the sampled values.

/** Named like under-pressure's TYPE_* constants, so logs and bodies use the same words as its pressureHandler. */
export type PressureMetric = 'eventLoopDelay' | 'heapUsedBytes' | 'rssBytes' | 'eventLoopUtilization'

export interface PressureOptions {
  /** Mean event-loop delay in ms over one sample; 0 turns it off. */
  readonly maxEventLoopDelay: number
  readonly maxHeapUsedBytes: number
  readonly maxRssBytes: number
  /** 0..1 over one sample (under-pressure's 'interval' mode); 0 turns it off. */
  readonly maxEventLoopUtilization: number
  readonly sampleInterval: number
  /** true: every route in scope answers 503 while under pressure. false: only readiness does. */
  readonly loadShedding: boolean
  /** What pressure makes readiness report: 'warning' (429, the default: overload is not death) or 'critical' (503). */
  readonly status: 'warning' | 'critical'
}

/** The shape of under-pressure's `memoryUsage()` decorator. */
export interface SampledUsage {
  eventLoopDelay: number
  heapUsed: number
  rssBytes: number
  eventLoopUtilized: number
}

type Limit = readonly [PressureMetric, keyof SampledUsage, number]

/**
 * Returns which thresholds a sample exceeds, or undefined when every threshold is off (no reader, no timer).
 * The comparisons are under-pressure's own (`>`, 0 = off), in its order, so we name what it decided.
 */
export function pressureReader (options: PressureOptions): ((usage: SampledUsage) => PressureMetric[]) | undefined {
  const limits: Limit[] = ([
    ['eventLoopDelay', 'eventLoopDelay', options.maxEventLoopDelay],
    ['heapUsedBytes', 'heapUsed', options.maxHeapUsedBytes],
    ['rssBytes', 'rssBytes', options.maxRssBytes],
    ['eventLoopUtilization', 'eventLoopUtilized', options.maxEventLoopUtilization]
  ] satisfies Limit[]).filter(([, , max]) => max > 0)
  if (limits.length === 0) return undefined
  return (usage) => limits.filter(([, key, max]) => usage[key] > max).map(([metric]) => metric)
}

/** A pressureHandler that lets the request through: under-pressure keeps sampling, nothing gets shed. */
export function letThrough (): undefined {
  return undefined
}

export function underPressureOptions (options: PressureOptions): FastifyUnderPressureOptions {
  return {
    maxEventLoopDelay: options.maxEventLoopDelay,
    maxHeapUsedBytes: options.maxHeapUsedBytes,
    maxRssBytes: options.maxRssBytes,
    maxEventLoopUtilization: options.maxEventLoopUtilization,
    // 'cumulative' averages over the whole process lifetime and would never notice a recent overload.
    eventLoopUtilizationMode: 'interval',
    sampleInterval: options.sampleInterval,
    // Without shedding, under-pressure still samples and isUnderPressure() stays truthful for app code.
    ...(options.loadShedding ? {} : { pressureHandler: letThrough })
  }
}
