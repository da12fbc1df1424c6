import t from 'tap'
import { smoke } from '../fixtures/smoke.js'

t.test('P12 runs one smoke round, and its negative control really failed', async (t) => {
  const report = await smoke(t, 'P12')
  // The old discovery failed every request, so the replicas really were all critical.
  const p12 = report.figures[0]!
  t.ok(p12.baseline.min > 0 && p12.baseline.min === p12.requests!.baseline.min, 'P12: with every replica critical the old discovery served nothing')
})
