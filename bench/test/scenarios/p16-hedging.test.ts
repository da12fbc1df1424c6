import t from 'tap'
import { sidesRound } from '../fixtures/smoke.js'

// #23's tail scenarios run against real replicas, our gateway and HAProxy. No figure is judged (a smoke
// round on a shared box measures nothing); what is checked is the harness: every side ran, the windows
// are finite, and the counters at the replicas really count.
t.test('P16 runs one smoke round: every side ran, with finite windows', async (t) => {
  await sidesRound(t, 'P16', ['P16 round 1 ours', 'P16 round 1 no-hedge', 'P16 round 1 haproxy'])
})
