import t from 'tap'
import { round } from '../fixtures/smoke.js'

// #25: failover to dc2 when every dc1 replica dies, against two real agents WAN-joined. No figure is
// judged: only that the harness ran every side, and that the drill bites (without failover, requests fail).
t.test('P20 runs one smoke round: every side, and its negative control really loses requests', async (t) => {
  const lines: string[] = []
  const report = await round('P20', lines)
  t.comment(lines.join('\n'))
  const p20 = report.figures
  t.same(p20.map((f) => f.unit), ['failed', 'failed', 'failed', 'ms', 'ms', 'of offered'], 'failures against three peers, the signed time against two anchors, delivery with its null control')
  const control = p20[0]!
  t.match(control.baselineName, /without failover/)
  t.ok(control.baseline.min > 0, `without failover, requests failed in every round (${control.baseline.samples.join(', ')})`)
  t.ok(p20.filter((f) => f.unit === 'failed').every((f) => f.requests!.ours.min > 0 && f.requests!.baseline.min > 0), 'every side was under load')
  t.ok(p20.every((f) => f.windows!.every((w) => Number.isFinite(w.value))), 'finite windows (the signed time may be negative)')
  const delivered = p20.find((f) => f.unit === 'of offered')!
  t.ok(delivered.aa && delivered.aa.samples.length === 4 && delivered.aa.samples.every(Number.isFinite), 'the A/A null control from every side\'s two windows before the kill')
  for (const side of ['ours', 'no-failover', 'prepared-query', 'dns']) {
    t.match(lines.find((l) => l.startsWith(`P20 round 1 ${side}: `)), /dc1 served by 2 replicas/, `${side} ran, and reached both dc1 replicas before the kill`)
  }
})
