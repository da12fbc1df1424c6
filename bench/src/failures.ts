import type { Figure } from './scenario.js'
import { summarize } from './stats.js'

/** What one run's load counted (the shape of the app fixture's request loop). */
export interface RunCount {
  ok: number
  non2xx: number
  errors: number
  /** os.loadavg() when the run ended, where the scenario recorded it. */
  loadavg?: number[]
}

const failed = (r: RunCount): number => r.non2xx + r.errors
const sent = (r: RunCount): number => r.ok + failed(r)

/** "5/23178, 0/22000": each run's failures of its requests, for the log. */
export function describeRuns (runs: RunCount[]): string {
  return runs.map((r) => `${failed(r)}/${sent(r)}`).join(', ')
}

/**
 * A failure-count figure: failed requests per run and the requests each run sent, so the table shows
 * counts and shares. No ratio: 5 failures against 0 is not "6× better", and (b+1)/(a+1) only hid that.
 * The target is always "ours fails none", in runs of at least `minRequests` (default: any size).
 */
export function failureFigure (spec: Pick<Figure, 'id' | 'what' | 'baselineName' | 'target'> & { ours: RunCount[], baseline: RunCount[], minRequests?: number }): Figure {
  const ours = spec.ours.map(failed)
  const oursSent = spec.ours.map(sent)
  return {
    id: spec.id,
    what: spec.what,
    unit: 'failed',
    ours: summarize(ours),
    baseline: summarize(spec.baseline.map(failed)),
    baselineName: spec.baselineName,
    ratio: null,
    target: spec.target,
    met: ours.every((n) => n === 0) && oursSent.every((n) => n >= (spec.minRequests ?? 0)),
    requests: { ours: summarize(oursSent), baseline: summarize(spec.baseline.map(sent)) },
    windows: [
      ...spec.ours.map((r, round) => ({ side: 'ours', round, value: failed(r), loadavg: r.loadavg ?? [] })),
      ...spec.baseline.map((r, round) => ({ side: 'baseline', round, value: failed(r), loadavg: r.loadavg ?? [] }))
    ]
  }
}
