import t from 'tap'
import { checkAaRow, round } from '../fixtures/smoke.js'

// A control that stopped failing (a freeze that freezes nothing) would make "ours 0" meaningless: this
// test fails then, whatever ours did.
t.test('P10 runs one smoke round: the round-robin control really gets stuck, the peer\'s config is kept, A/A beside the delivery', async (t) => {
  const report = await round('P10')
  // The old round-robin gateway gets stuck behind the frozen replica (requests over 1 s) in every
  // round, so the freeze really froze a replica that was being served.
  // Over 1 s is not enough on a loaded box (ours has some too, stuck until its 2 s per-try timeout): the
  // round-robin side's slowest request waited for about the whole freeze, longer than any per-try timeout.
  const stuck = report.figures.find((f) => f.id === 'P10' && f.unit === 'slow' && /round-robin/.test(f.baselineName))!
  t.ok(stuck.baseline.min > 0, `P10: the round-robin side had requests over 1 s in every round (${stuck.baseline.samples.join(', ')})`)
  const max = report.figures.find((f) => f.id === 'P10' && /^max latency/.test(f.what) && /round-robin/.test(f.baselineName))!
  const freezeMs = 1000 * Number(/frozen (\d+) s/.exec(max.what)![1])
  t.ok(max.baseline.min >= 0.9 * freezeMs, `P10: the round-robin side's slowest request waited for the freeze (${freezeMs} ms) in every round (${max.baseline.samples.map((x) => x.toFixed(0)).join(', ')} ms)`)
  t.ok(report.figures.some((f) => f.id === 'P10' && /HAProxy 2\.6 as a fair peer/.test(f.baselineName) && /retries 3/.test(f.config ?? '')), 'P10: the fair HAProxy config is kept in the results')
  t.same(report.figures.filter((f) => f.id === 'P10' && f.unit === 'ms').map((f) => f.what.match(/(p50|p99|max) latency/)![1]), ['p50', 'p99', 'max', 'p50', 'p99', 'max'], 'the tail against HAProxy and against the round-robin control')
  // The A/A control beside the share delivered, in the printed table.
  const controlled = report.figures.filter((f) => f.unit === 'of offered')
  t.ok(controlled.length >= 2, 'both of P10\'s delivery rows')
  for (const f of controlled) checkAaRow(t, report, f)
})
