import t from 'tap'
import { smoke, whats } from '../fixtures/smoke.js'

t.test('P2 runs one smoke round: pick() over 3 and over 1,000 instances', async (t) => {
  t.same(whats(await smoke(t, 'P2')), ['pick() with 3 instances', 'pick() with 1000 instances'])
})
