import t from 'tap'
import { round } from '../fixtures/smoke.js'

// A control that stopped failing (a baseline that quietly retries, a kill that kills nothing) would make
// "ours 0" meaningless: this test fails then, whatever ours did.
t.test('P6 runs one smoke round, and its negative control really loses requests', async (t) => {
  const report = await round('P6')
  // The dispatcher without retry or ejection loses requests after kill -9, in every round.
  const p6 = report.figures.find((f) => f.id === 'P6' && f.unit === 'failed')!
  t.ok(p6.baseline.min > 0, `P6: the side without retry lost requests in every round (${p6.baseline.samples.join(', ')})`)
  t.ok(p6.requests!.ours.min > 0, 'P6: ours was under load')
  t.ok(report.figures.some((f) => f.id === 'P6' && f.what.startsWith('p99 latency') && Number.isFinite(f.ours.median)), 'P6: p99 of both sides')
})
