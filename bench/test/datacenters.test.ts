import t from 'tap'
import { pollUntil } from '../src/datacenters.js'

// The failover scenarios' bounded wait (their drills run in test/scenarios/, on real agents).
t.test('pollUntil(): polls until the condition holds; past the bound it fails, naming what and the last value', async (t) => {
  let n = 0
  t.equal(await pollUntil(() => ++n, (v) => v === 3, 'three'), 3, 'the value that held, after two more polls')
  await t.rejects(pollUntil(() => 'no', (v) => v === 'yes', 'dc2 stale', 50), { message: 'dc2 stale: not after 50 ms: "no"' })
})
