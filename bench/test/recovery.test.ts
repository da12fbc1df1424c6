import t from 'tap'
import { firstServed, recovery } from '../src/recovery.js'
import { runBench } from '../src/run.js'

// P23 and R20 (#30): the pure reading of a thawed replica's recovery, then one smoke round of each
// scenario against real replicas, our gateway and HAProxy. No figure is judged: only the harness.

t.test('recovery(): the first answer after the thaw, and the share, from requests due in the window', async (t) => {
  const s = (due: number, done: number, instance: string, ok = true): { due: number, done: number, ok: boolean, instance: string } => ({ due, done, ok, instance })
  const samples = [
    s(900, 3100, 'r1'), // due before the thaw: a stuck request that the thaw released does not count
    s(1000, 1010, 'r0'),
    s(1100, 1350, 'r1'),
    s(1200, 1210, 'r2'),
    s(1300, 1305, 'r1', false), // failed: neither first nor in the share
    s(1400, 1410, 'r1'),
    s(2100, 2110, 'r1') // due after the window
  ]
  t.same(recovery(samples, 'r1', 1000, 1000), { firstMs: 350, served: true, share: 2 / 4 })
  t.same(recovery(samples, 'r9', 1000, 1000), { firstMs: 1000, served: false, share: 0 }, 'never served: the whole window, flagged')
  t.same(recovery([], 'r1', 0, 500), { firstMs: 500, served: false, share: 0 }, 'no answers at all')
  t.equal(firstServed(recovery(samples, 'r1', 1000, 1000)), '350 ms')
  t.equal(firstServed(recovery([], 'r1', 0, 500)), 'never')
})

t.test('P23 and R20 run one smoke round each and report finite figures', async (t) => {
  const lines: string[] = []
  const report = await runBench({ ids: ['P23', 'R20'], rounds: 1, smoke: true, log: (l) => lines.push(l) })
  const p23 = report.figures.filter((f) => f.id === 'P23')
  t.same(p23.map((f) => f.unit), ['ms', 'of answers', 'ms', 'of answers', 'failed'], 'P23: first request and share against both anchors, and failures')
  t.match(p23[0]!.baselineName, /HAProxy 2\.6 as a fair peer/)
  t.match(p23[2]!.baselineName, /30 s back-off/)
  for (const f of p23.filter((f) => f.unit !== 'failed')) {
    t.ok(f.windows!.every((w) => Number.isFinite(w.value) && w.value >= 0), `${f.what}: finite windows`)
  }
  t.ok(p23.filter((f) => f.unit === 'of answers').every((f) => f.ours.max <= 1), 'a share is a share')
  const r20 = report.figures.filter((f) => f.id === 'R20')
  t.same(r20.map((f) => f.unit), ['failed', 'slow'])
  t.ok(r20[0]!.requests!.ours.min > 0 && r20[0]!.requests!.baseline.min > 0, 'R20: both sides were under load')
  t.ok(lines.some((l) => /^P23 round 1 backoff-30s: /.test(l)) && lines.some((l) => /^R20 round 1 haproxy: /.test(l)), 'every side ran')
})
