import t from 'tap'
import { runBench, table } from '../src/run.js'

// A small bench of the figures whose negative controls carry them, and of one throughput figure for its
// A/A control. A control that stopped failing (a baseline that quietly retries, a freeze that freezes
// nothing) would make "ours 0" meaningless: these tests fail then, whatever ours did.
t.test('the negative controls really fail, and the A/A ratios are printed', async (t) => {
  const lines: string[] = []
  const report = await runBench({ ids: ['P1', 'P6', 'P10'], rounds: 1, smoke: true, log: (l) => lines.push(l) })
  const out = table(report)

  // P6: the dispatcher without retry or ejection loses requests after kill -9, in every round.
  const p6 = report.figures.find((f) => f.id === 'P6' && f.unit === 'failed')!
  t.ok(p6.baseline.min > 0, `P6: the side without retry lost requests in every round (${p6.baseline.samples.join(', ')})`)
  t.ok(p6.requests!.ours.min > 0, 'P6: ours was under load')
  t.ok(report.figures.some((f) => f.id === 'P6' && f.what.startsWith('p99 latency') && Number.isFinite(f.ours.median)), 'P6: p99 of both sides')

  // P10: the old round-robin gateway gets stuck behind the frozen replica (requests over 1 s) in every
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

  // The A/A control beside every throughput ratio and beside P10's share delivered, in the printed table.
  const controlled = report.figures.filter((f) => f.unit === 'req/s' || f.unit === 'of offered')
  t.ok(controlled.length >= 3, 'P1 and both of P10\'s delivery rows')
  for (const f of controlled) {
    t.ok(f.aa && f.aa.samples.length >= 2 && f.aa.samples.every(Number.isFinite), `${f.id} ${f.what}: A/A ratios`)
    const row = out.split('\n').find((l) => l.includes(`| ${f.id} | ${f.what} |`) && l.includes(f.baselineName))!
    t.match(row, /\| \d[\d.]*× \(\d[\d.]*–\d[\d.]*\) \|/, `${f.id} ${f.what}: the A/A ratios printed beside the ratio`)
    t.match(row, /\| (met|no|inconclusive \(noise ±[\d.]+ %\)|invalid[^|]*) \|$/, 'and a verdict')
  }
  t.ok(lines.some((l) => /^P1 .*A\/A /.test(l)), 'the log prints the A/A ratios too')
})
