import t from 'tap'
import { smoke } from '../fixtures/smoke.js'

t.test('P11 runs one smoke round with both gateways under load through the same outage', async (t) => {
  const report = await smoke(t, 'P11')
  t.same(report.figures.map((f) => f.unit), ['failed', 'ms'])
  // P11's negative control loses the outage's requests only when the outage outlasts its 60 s staleTtl,
  // which a smoke round does not; what is checked is that both sides really ran through the same outage.
  const p11 = report.figures[0]!
  t.ok(p11.requests!.ours.min > 0 && p11.requests!.baseline.min > 0, 'P11: both gateways were under load during the outage')
})
