import { summarize, type Summary } from './stats.js'

export interface ScenarioContext {
  /** Rounds of each side; ≥ 3 for real figures, 1 for the smoke run in `pnpm test`. */
  rounds: number
  /** Shorter loads and waits: checks that the harness works, not how fast anything is. */
  smoke: boolean
  log (line: string): void
}

/** What the HTTP loads behind a throughput figure saw, summed over every load (warm-ups included). */
export interface LoadTally {
  requests: number
  non2xx: number
  errors: number
}

export interface Figure {
  id: string
  what: string
  unit: string
  ours: Summary
  baseline: Summary
  baselineName: string
  /**
   * ours ÷ baseline, or baseline ÷ ours when lower is better: > 1 always means we are better. Null where a
   * ratio would mislead: failure counts (0 against 5 is no "ratio") are read as shares of `requests`.
   */
  ratio: number | null
  target: string
  /** Whether `ours` meets the target; undefined when the target is not a fixed number. */
  met: boolean | undefined
  /** Failure counts only: the requests each run sent, side by side with `ours` and `baseline`. */
  requests?: { ours: Summary, baseline: Summary }
  /** Throughput only: any non-2xx answer or error makes the figure invalid, whatever its req/s. */
  loads?: LoadTally
  /**
   * The verdict read against the noise ("met", "no", "inconclusive (noise ±X %)"); `met` is true only for
   * "met". Figures without an A/A control leave it out and the table reads `met` as yes/no.
   */
  verdict?: string
  /** The A/A null control: the same system measured against itself in the same rounds, as ratios. */
  aa?: Summary
  /** Every measured window's absolute figure, per side and round, with the load average when it ended. */
  windows?: Window[]
  /** The peer's configuration as it ran (P10's HAProxy), so a reader can judge the comparison. */
  config?: string
}

/** One measured window: its side ("ours", "baseline", or the side an A/A window repeated), round, value. */
export interface Window {
  side: string
  round: number
  value: number
  /** os.loadavg() when the window ended: 1, 5 and 15 minutes. */
  loadavg: number[]
}

/** A throughput figure whose loads saw a non-2xx answer or an error measures something else than throughput. */
export function invalid (f: Figure): boolean {
  return f.loads !== undefined && f.loads.non2xx + f.loads.errors > 0
}

/** What the table's last column reads: the verdict, or yes/no/– from `met`. */
export function reading (f: Figure): string {
  if (invalid(f)) return 'invalid'
  if (f.verdict !== undefined) return f.verdict
  return f.met === undefined ? '–' : f.met ? 'yes' : 'no'
}

/** Whether `pnpm bench --check` fails on this figure: its target reads "no" (an invalid figure too). */
export function failsCheck (f: Figure): boolean {
  const r = reading(f)
  return r === 'no' || r === 'invalid'
}

/** The smoke run's value or the real one: the single place where the two modes differ. */
export function sized<T> (ctx: ScenarioContext, smoke: T, real: T): T {
  return ctx.smoke ? smoke : real
}

export interface Scenario {
  id: string
  title: string
  run (ctx: ScenarioContext): Promise<Figure[]>
}

/** A latency figure (lower is better, no fixed target): the peer's median ÷ ours, so > 1 means we are faster. */
export function latencyFigure (f: Pick<Figure, 'id' | 'what' | 'baselineName' | 'windows' | 'config'> & { ours: number[], baseline: number[] }): Figure {
  const ours = summarize(f.ours)
  const baseline = summarize(f.baseline)
  return { ...f, unit: 'ms', ours, baseline, ratio: baseline.median / ours.median, target: '–', met: undefined }
}
