import { table, type BenchReport } from './run.js'

// The README's performance table lives between these markers and is only ever written from a
// results file (bench/results/readme.json, committed with it), so anyone can check one against the other.
const START = '<!-- bench:start -->\n'
const END = '<!-- bench:end -->'

/** The text between the bench markers of `readme`; an error naming `file` when they are missing. */
export function benchSection (readme: string, file: string): string {
  const from = readme.indexOf(START)
  const to = readme.indexOf(END, from)
  if (from === -1 || to === -1) throw new Error(`${file} has no ${START.trim()} … ${END} section`)
  return readme.slice(from + START.length, to)
}

/** `readme` with the bench section replaced by the table of `report`. */
export function withTable (readme: string, file: string, report: BenchReport): string {
  const current = benchSection(readme, file)
  const at = readme.indexOf(START) + START.length
  return readme.slice(0, at) + table(report) + readme.slice(at + current.length)
}

/**
 * The published report with `run` added as an addendum (`pnpm bench --readme FILE --addendum IDS`): the
 * scenarios measured in `run` leave the published figures and any earlier addendum (one left empty is
 * dropped), so every scenario keeps exactly one row, each under the provenance line of the run it came from.
 */
export function withAddendum (published: BenchReport, run: BenchReport): BenchReport {
  const ids = new Set(run.figures.map((f) => f.id))
  const keep = (r: BenchReport): BenchReport => ({ ...r, figures: r.figures.filter((f) => !ids.has(f.id)) })
  const earlier = (published.addenda ?? []).map(keep).filter((a) => a.figures.length > 0)
  const { addenda: _ignored, ...own } = run
  return { ...keep(published), addenda: [...earlier, own] }
}
