import t from 'tap'
import { smoke } from '../fixtures/smoke.js'

t.test('P22 runs one smoke round and reports finite figures', async (t) => {
  await smoke(t, 'P22')
})
