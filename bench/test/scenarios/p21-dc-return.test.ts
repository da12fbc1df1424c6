import t from 'tap'
import { round } from '../fixtures/smoke.js'

// #25: the return to dc1 after a datacenter failover, against two real agents WAN-joined. No figure is
// judged: only that both sides ran against both dc1 replicas, and that each trace really left dc1 and
// came back to it (a return that never failed over would measure nothing).
t.test('P21 runs one smoke round: both sides leave dc1 and come back to it', async (t) => {
  const lines: string[] = []
  const report = await round('P21', lines)
  t.comment(lines.join('\n'))
  const p21 = report.figures
  t.same([...new Set(p21.map((f) => f.id))], ['P21'])
  t.same(p21.map((f) => f.unit), ['ms', 'flips'], 'the return time and the changes of direction, against the prepared query')
  t.ok(p21.every((f) => f.windows!.length === 2 && f.windows!.every((w) => Number.isFinite(w.value) && w.value >= 0)), 'one finite window per side')
  for (const side of ['ours', 'prepared-query']) {
    const line = lines.find((l) => l.startsWith(`P21 round 1 ${side}: `))
    t.match(line, /dc1 served by 2 replicas/, `${side} ran, and reached both dc1 replicas before the kill`)
    const trace = line!.match(/; trace ([\d.→ ]+) \(/)![1]!.split(' → ').map(Number)
    t.equal(trace[0], 1, `${side}: dc1 took everything before the kill`)
    t.ok(trace.includes(0), `${side}: dc1 took nothing while it was lost (${trace.join(' → ')})`)
    t.equal(trace[trace.length - 1], 1, `${side}: and everything again once it was back`)
  }
})
