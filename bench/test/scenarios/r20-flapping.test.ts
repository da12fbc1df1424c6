import t from 'tap'
import { round } from '../fixtures/smoke.js'

// #30: a flapping replica, through ours and through HAProxy. No figure is judged: only the harness.
t.test('R20 runs one smoke round with both sides under load', async (t) => {
  const lines: string[] = []
  const report = await round('R20', lines)
  const r20 = report.figures
  t.same(r20.map((f) => f.unit), ['failed', 'slow'])
  t.ok(r20[0]!.requests!.ours.min > 0 && r20[0]!.requests!.baseline.min > 0, 'R20: both sides were under load')
  t.ok(lines.some((l) => /^R20 round 1 haproxy: /.test(l)), 'every side ran')
})
