import t from 'tap'
import { sidesRound } from '../fixtures/smoke.js'

// #23's tail scenarios run against real replicas, our gateway and HAProxy. No figure is judged (a smoke
// round on a shared box measures nothing); what is checked is the harness: every side ran, the windows
// are finite, and the counters at the replicas really count.
t.test('P17 runs one smoke round: every side ran, with finite windows', async (t) => {
  const report = await sidesRound(t, 'P17', ['P17 round 1 ours', 'P17 round 1 haproxy'])
  const amplification = report.figures.find((f) => f.unit === '×' && f.target === '≤ 1.1')!
  t.ok(amplification.ours.median >= 0.9, 'P17: the replicas counted the tries (about one per request, or more)')
})
