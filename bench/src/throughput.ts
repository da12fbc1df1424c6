import type { ConnectionOptions } from 'node:tls'
import { loadavg } from 'node:os'
import { load } from './load.js'
import { sized, type Figure, type LoadTally, type ScenarioContext, type Window } from './scenario.js'
import { firstIn, summarize, verdict } from './stats.js'

export interface ThroughputSpec {
  id: string
  what: string
  /** The URL measured, and the baseline's URL, each served by its own process. */
  ours: string
  baseline: string
  baselineName: string
  /** The lowest acceptable ours ÷ baseline. */
  target: number
  /** Client TLS options of a side served over https (P19's client certificate). */
  tls?: { ours?: ConnectionOptions, baseline?: ConnectionOptions }
}

/**
 * req/s of `ours` ÷ req/s of `baseline`, with an A/A control from the same windows. Each round measures
 * four windows in ABBA order (ours, baseline, baseline, ours; the next round baseline first), each side
 * after its own warm-up load in that round. The round's ratio is ours' two windows ÷ the baseline's two,
 * which cancels a linear drift within the round; its A/A ratios are each side's second window ÷ its
 * first, the same system against itself, which is how far the harness moves with nothing changed.
 * Every load counts its non-2xx answers and errors; a figure whose loads saw any is invalid (fast 500s
 * or 429s are not throughput) and never meets its target.
 */
export async function throughput (ctx: ScenarioContext, spec: ThroughputSpec): Promise<Figure> {
  // 2 s even in a smoke round: a 1 s window on a box at a load average of 20 can complete no request.
  const seconds = sized(ctx, 2, 3)
  const warmup = sized(ctx, 1, 2)
  const loads: LoadTally = { requests: 0, non2xx: 0, errors: 0 }
  const windows: Window[] = []
  const measure = async (side: 'ours' | 'baseline', s: number): Promise<number> => {
    const r = await load(urls[side], s, undefined, spec.tls?.[side])
    loads.requests += r.total
    loads.non2xx += r.non2xx
    loads.errors += r.errors
    return r.requestsPerSecond
  }
  const urls = { ours: spec.ours, baseline: spec.baseline }
  const ratios: number[] = []
  const aa: number[] = []
  const ours: number[] = []
  const baseline: number[] = []
  for (let round = 0; round < ctx.rounds; round++) {
    const [x, y] = firstIn(round) === 'a' ? ['ours', 'baseline'] as const : ['baseline', 'ours'] as const
    const got: Record<'ours' | 'baseline', number[]> = { ours: [], baseline: [] }
    const window = async (side: 'ours' | 'baseline'): Promise<void> => {
      const value = await measure(side, seconds)
      got[side].push(value)
      windows.push({ side, round, value, loadavg: loadavg() })
    }
    await measure(x, warmup)
    await window(x)
    await measure(y, warmup)
    await window(y)
    await window(y)
    await window(x)
    const sum = (xs: number[]): number => xs[0]! + xs[1]!
    ratios.push(sum(got.ours) / sum(got.baseline))
    aa.push(got.ours[1]! / got.ours[0]!, got.baseline[1]! / got.baseline[0]!)
    ours.push(sum(got.ours) / 2)
    baseline.push(sum(got.baseline) / 2)
  }
  const ratio = summarize(ratios).median
  const clean = loads.non2xx + loads.errors === 0
  const v = verdict(ratios, spec.target, aa)
  ctx.log(`${spec.id} ${spec.what}: ratio ${ratios.map((r) => r.toFixed(3)).join('/')}, A/A ${aa.map((r) => r.toFixed(3)).join('/')} → ${v.text}; ${loads.non2xx} non-2xx, ${loads.errors} errors in ${loads.requests} requests`)
  return {
    id: spec.id,
    what: spec.what,
    unit: 'req/s',
    ours: summarize(ours),
    baseline: summarize(baseline),
    baselineName: spec.baselineName,
    ratio,
    target: `≥ ${spec.target}×`,
    met: clean && v.met,
    verdict: v.text,
    aa: summarize(aa),
    windows,
    loads
  }
}
