import t from 'tap'
import { table } from '../../src/run.js'
import { round } from '../fixtures/smoke.js'

// R19's harness, not its timings: both sides elected a new leader after the SIGTERM and after the kill -9
// of the leader, every figure is finite, and the table prints the three rows.
t.test('R19 runs one smoke round: both sides hand over on SIGTERM and fail over on kill -9', async (t) => {
  const lines: string[] = []
  const report = await round('R19', lines)
  t.same(report.figures.map((f) => f.unit), ['ms', 's', 'instants'])
  for (const f of report.figures) {
    t.ok(Number.isFinite(f.ours.median) && Number.isFinite(f.baseline.median), `${f.what}: finite medians`)
    t.same(f.windows!.map((w) => w.side).sort(), ['ours', 'peer'], `${f.what}: a window per side`)
  }
  const [handover, failover, overlaps] = report.figures
  // The peer is run as its careful users run it (`exec`, SHELL fixed): no job of its outlives its lock.
  // Without `exec`, a job runs on after its shell until it notices it is orphaned (≤ 200 ms): that shows
  // here only when the next job starts first, so this is a check of the setup, not a proof of it.
  t.equal(overlaps!.baseline.max, 0, 'the peer\'s jobs never overlapped')
  t.ok(Number.isFinite(handover!.ratio) && Number.isFinite(failover!.ratio), 'finite ratios for the timings')
  // Each side's kill -9 waits on Consul's session expiry: at least one TTL (10 s ours in smoke, 15 s the peer).
  t.ok(failover!.ours.min >= 10 && failover!.baseline.min >= 15, 'the kill -9 failovers waited for the session to expire')
  for (const side of ['ours', 'peer']) t.ok(lines.some((l) => l.startsWith(`R19 round 1 ${side}: SIGTERM → elected `)), `${side} ran`)
  t.equal(table(report).split('\n').filter((l) => l.startsWith('| R19 |')).length, 3, 'the table prints three rows')
})
