import t from 'tap'
import { smoke, whats } from '../fixtures/smoke.js'

t.test('P9 runs one smoke round: back in ?passing after an agent restart, with an HTTP and a TTL check', async (t) => {
  t.same(whats(await smoke(t, 'P9')), ['agent restart → in ?passing again, HTTP check', 'agent restart → in ?passing again, TTL check'])
})
