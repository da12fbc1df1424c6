import type { Summary } from './stats.js'

export interface ScenarioContext {
  /** Rounds of each side; ≥ 3 for real figures, 1 for the smoke run in `pnpm test`. */
  rounds: number
  /** Shorter loads and waits: checks that the harness works, not how fast anything is. */
  smoke: boolean
  log (line: string): void
}

export interface Figure {
  id: string
  what: string
  unit: string
  ours: Summary
  baseline: Summary
  baselineName: string
  /** ours ÷ baseline, or baseline ÷ ours when lower is better: > 1 always means we are better. */
  ratio: number
  target: string
  /** Whether `ours` meets the target; undefined when the target is not a fixed number. */
  met: boolean | undefined
}

/** The smoke run's value or the real one: the single place where the two modes differ. */
export function sized<T> (ctx: ScenarioContext, smoke: T, real: T): T {
  /* c8 ignore next -- tests only run the smoke mode; the real branch runs in `pnpm bench` */
  return ctx.smoke ? smoke : real
}

export interface Scenario {
  id: string
  title: string
  run (ctx: ScenarioContext): Promise<Figure[]>
}
