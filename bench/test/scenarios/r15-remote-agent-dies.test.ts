import t from 'tap'
import { round } from '../fixtures/smoke.js'

// #25: a remote datacenter's agent dies, against two real agents WAN-joined (a fresh pair per run). No
// figure is judged: only that both sides ran, that ours marked dc2 stale and kept its 2 instances, and
// that the drill bites: with dc1 lost too, the prepared query (which needs dc2 readable) loses requests.
t.test('R15 runs one smoke round: dc2 marked stale with its instances kept; with dc1 lost too, the anchor loses requests', async (t) => {
  const lines: string[] = []
  const report = await round('R15', lines)
  t.comment(lines.join('\n'))
  const r15 = report.figures
  t.same([...new Set(r15.map((f) => f.id))], ['R15'])
  t.same(r15.map((f) => f.unit), ['failed', 'failed'], 'failures with dc2 unreadable, then with dc1 lost too')
  t.ok(r15.every((f) => f.requests!.ours.min > 0 && f.requests!.baseline.min > 0), 'both sides were under load in both phases')
  const lost = r15[1]!
  t.match(lost.baselineName, /negative control/)
  t.ok(lost.baseline.min > 0, `with dc1 lost and dc2 unreadable, the prepared query failed requests (${lost.baseline.samples.join(', ')})`)
  const ours = lines.find((l) => l.startsWith('R15 round 1 ours: '))
  t.match(ours, /dc2 level stale \d+ ms after, 2 dc2 instances kept/, 'ours marked dc2 stale and kept both of its instances')
  t.match(ours, /dc1's share 1\.000/, 'while dc2 was unreadable, dc1 served every answer')
  t.ok(lines.some((l) => l.startsWith('R15 round 1 prepared-query: ')), 'the anchor ran')
})
