import { load } from './load.js'
import { sized, type Figure, type LoadTally, type ScenarioContext } from './scenario.js'
import { interleave, summarize } from './stats.js'

export interface ThroughputSpec {
  id: string
  what: string
  /** The URL measured, and the baseline's URL, each served by its own process. */
  ours: string
  baseline: string
  baselineName: string
  /** The lowest acceptable ours ÷ baseline. */
  target: number
}

/**
 * req/s of `ours` ÷ req/s of `baseline`: one warm-up load each (JIT, sockets), then interleaved rounds,
 * and the median of the per-round ratios. Every load counts its non-2xx answers and errors; a figure
 * whose loads saw any is invalid (fast 500s or 429s are not throughput) and never meets its target.
 */
export async function throughput (ctx: ScenarioContext, spec: ThroughputSpec): Promise<Figure> {
  const seconds = sized(ctx, 1, 5)
  const loads: LoadTally = { requests: 0, non2xx: 0, errors: 0 }
  const measure = async (url: string, s: number): Promise<number> => {
    const r = await load(url, s)
    loads.requests += r.total
    loads.non2xx += r.non2xx
    loads.errors += r.errors
    return r.requestsPerSecond
  }
  await measure(spec.ours, 1)
  await measure(spec.baseline, 1)
  const { a, b } = await interleave(ctx.rounds, () => measure(spec.ours, seconds), () => measure(spec.baseline, seconds))
  const ours = summarize(a)
  const baseline = summarize(b)
  const ratio = summarize(a.map((x, i) => x / b[i]!)).median
  const clean = loads.non2xx + loads.errors === 0
  ctx.log(`${spec.id} ${spec.what}: ${ours.median.toFixed(0)} req/s vs ${baseline.median.toFixed(0)} req/s, ratio ${ratio.toFixed(3)}; ${loads.non2xx} non-2xx, ${loads.errors} errors in ${loads.requests} requests`)
  return { id: spec.id, what: spec.what, unit: 'req/s', ours, baseline, baselineName: spec.baselineName, ratio, target: `≥ ${spec.target}×`, met: clean && ratio >= spec.target, loads }
}
