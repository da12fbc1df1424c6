import t from 'tap'
import { round } from '../fixtures/smoke.js'

// #23's tail scenarios run against real replicas, our gateway and HAProxy. No figure is judged (a smoke
// round on a shared box measures nothing); what is checked is the harness: every side ran, the windows
// are finite, and the counters at the replicas really count.
t.test('P17 runs one smoke round: every side ran, with finite windows', async (t) => {
  const lines: string[] = []
  const report = await round('P17', lines)
  t.same([...new Set(report.figures.map((f) => f.id))], ['P17'])
  for (const f of report.figures) {
    t.ok(f.windows && f.windows.length >= 2 && f.windows.every((w) => Number.isFinite(w.value) && w.value >= 0), `${f.id} ${f.what}: finite windows`)
  }
  for (const side of ['P17 round 1 ours', 'P17 round 1 haproxy']) t.ok(lines.some((l) => l.startsWith(`${side}: `)), `${side} ran`)
  const amplification = report.figures.find((f) => f.unit === '×' && f.target === '≤ 1.1')!
  t.ok(amplification.ours.median >= 0.9, 'P17: the replicas counted the tries (about one per request, or more)')
})
