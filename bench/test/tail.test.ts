import t from 'tap'
import { runBench } from '../src/run.js'

// P16, P17 and P18 (#23): one smoke round each against real replicas, our gateway and HAProxy. No
// figure is judged (a smoke round on a shared box measures nothing); what is checked is the harness:
// every side ran, the windows are finite, and the counters at the replicas really count.
t.test('P16, P17 and P18 run one smoke round each and report finite figures', async (t) => {
  const lines: string[] = []
  const report = await runBench({ ids: ['P16', 'P17', 'P18'], rounds: 1, smoke: true, log: (l) => lines.push(l) })
  t.same([...new Set(report.figures.map((f) => f.id))], ['P16', 'P17', 'P18'])
  for (const f of report.figures) {
    t.ok(f.windows && f.windows.length >= 2 && f.windows.every((w) => Number.isFinite(w.value) && w.value >= 0), `${f.id} ${f.what}: finite windows`)
  }
  for (const side of ['P16 round 1 ours', 'P16 round 1 no-hedge', 'P16 round 1 haproxy', 'P17 round 1 ours', 'P17 round 1 haproxy', 'P18 round 1 ours', 'P18 round 1 no-deadline']) {
    t.ok(lines.some((l) => l.startsWith(`${side}: `)), `${side} ran`)
  }
  const amplification = report.figures.find((f) => f.id === 'P17' && f.unit === '×' && f.target === '≤ 1.1')!
  t.ok(amplification.ours.median >= 0.9, 'P17: the replicas counted the tries (about one per request, or more)')
  // The negative control of P18's counter: callers without a budget wait out the 2 s per-try timeout on
  // the frozen replica and are retried elsewhere long after their deadline; the replicas must see it.
  const late = report.figures.find((f) => f.id === 'P18' && f.unit === 'tries')!
  t.ok(late.baseline.median > 0, 'P18: late tries are counted at the replicas (negative control)')
})
