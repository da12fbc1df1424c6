import t from 'tap'
import { round } from '../fixtures/smoke.js'

// #25: the caller's zone lost and back, on a real agent with 2 zones × 2 replicas. No figure is judged:
// only that every side ran against both zone-a replicas, that the drill bites (without retry, requests
// fail), and that ours' split really left zone a and came back to it.
t.test('R16 runs one smoke round: every side, the negative control loses requests, ours leaves zone a and returns', async (t) => {
  const lines: string[] = []
  const report = await round('R16', lines)
  t.comment(lines.join('\n'))
  const r16 = report.figures
  t.same([...new Set(r16.map((f) => f.id))], ['R16'])
  t.same(r16.map((f) => f.unit), ['failed', 'of answers', 'ms', 'flips'], 'failures, zone a\'s share after its return, the return time, the split\'s changes of direction')
  const failed = r16[0]!
  t.match(failed.baselineName, /without retry/)
  t.ok(failed.baseline.min > 0, `without retry, requests failed in every round (${failed.baseline.samples.join(', ')})`)
  t.ok(failed.requests!.ours.min > 0 && failed.requests!.baseline.min > 0, 'both sides were under load')
  t.ok(r16.every((f) => f.windows!.length >= 2 && f.windows!.every((w) => Number.isFinite(w.value) && w.value >= 0)), 'finite windows')
  for (const side of ['ours', 'no-retry', 'no-locality']) {
    t.match(lines.find((l) => l.startsWith(`R16 round 1 ${side}: `)), /zone a served by 2 replicas/, `${side} ran, and reached both zone-a replicas before the kill`)
  }
  // The split's trace is the watch's own word: zone a's level went to 0 while lost, and ends at 1.
  const trace = lines.find((l) => l.startsWith('R16 round 1 ours: '))!.match(/split trace ([\d.→ ]+) \(/)![1]!.split(' → ').map(Number)
  t.equal(trace[0], 1, 'zone a took everything before the kill')
  t.ok(trace.includes(0), `zone a's level took nothing while it was lost (${trace.join(' → ')})`)
  t.equal(trace[trace.length - 1], 1, 'and everything again once it was back')
})
