// R19's reading of the contenders' reports: who led when, and whether two ever led at once. Every instant
// is a CLOCK_MONOTONIC reading (servers/kv-clock.ts), taken by the contender process that saw it, or by
// the harness at a kill -9 (a killed process cannot report that its leadership ended).

/** One contender's report: `elected` or `lost`, at a monotonic instant in ms. */
export interface LeaderReport { event: 'elected' | 'lost', at: number }

/** A leadership interval [from, to): elected at `from`, lost (or killed) at `to`. */
export interface Interval { from: number, to: number }

/**
 * One contender's leadership intervals from its reports in order; a leadership still open closes at
 * `end` (the contender was stopped or the round ended while it led).
 */
export function leadership (reports: readonly LeaderReport[], end: number): Interval[] {
  const out: Interval[] = []
  let from: number | undefined
  for (const r of reports) {
    if (r.event === 'elected' && from === undefined) from = r.at
    if (r.event === 'lost' && from !== undefined) {
      out.push({ from, to: r.at })
      from = undefined
    }
  }
  if (from !== undefined) out.push({ from, to: end })
  return out
}

/**
 * How many times two or more contenders led at once: the number of instants where the count of
 * leaders rises from one to two. Intervals are half-open, so one ending exactly when another starts is a
 * handover, not an overlap.
 */
export function twoLeaderInstants (intervals: readonly Interval[]): number {
  // Ends sort before starts at the same instant: [a, b) and [b, c) never overlap.
  const edges = intervals.flatMap((i) => [{ at: i.from, step: 1 }, { at: i.to, step: -1 }])
    .sort((a, b) => a.at - b.at || a.step - b.step)
  let leaders = 0
  let instants = 0
  for (const e of edges) {
    leaders += e.step
    if (e.step === 1 && leaders === 2) instants++
  }
  return instants
}
