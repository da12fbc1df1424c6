import t from 'tap'
import { round } from '../fixtures/smoke.js'

// #30: a thawed replica's recovery, against real replicas, our gateway, HAProxy and the 30 s back-off
// anchor. No figure is judged: only the harness.
t.test('P23 runs one smoke round: first request and share against both anchors, and failures', async (t) => {
  const lines: string[] = []
  const report = await round('P23', lines)
  const p23 = report.figures
  t.same(p23.map((f) => f.unit), ['ms', 'of answers', 'ms', 'of answers', 'failed'], 'P23: first request and share against both anchors, and failures')
  t.match(p23[0]!.baselineName, /HAProxy 2\.6 as a fair peer/)
  t.match(p23[2]!.baselineName, /30 s back-off/)
  for (const f of p23.filter((f) => f.unit !== 'failed')) {
    t.ok(f.windows!.every((w) => Number.isFinite(w.value) && w.value >= 0), `${f.what}: finite windows`)
  }
  t.ok(p23.filter((f) => f.unit === 'of answers').every((f) => f.ours.max <= 1), 'a share is a share')
  t.ok(lines.some((l) => /^P23 round 1 backoff-30s: /.test(l)), 'every side ran')
})
