import t from 'tap'
import { returnFigures, type TracedReturn } from '../src/loss-and-return.js'

// P21 and R16: the return figures from runs (their drills run in test/scenarios/, on real agents).

const run = (returnMs: number | undefined, flips: number): TracedReturn => ({
  window: { sent: 100, failed: 0, slow: 0, delivered: 1, p50: 1, p99: 2, max: 3 },
  failedBack: 0,
  criticalMs: 5000,
  returnMs,
  homeShare: 1,
  served: 2,
  trace: [1, 0, 1],
  flips,
  loadavg: [1, 1, 1]
})

t.test('returnFigures(): the return time (a return not seen counts as the whole window) and the changes of direction', async (t) => {
  const [time, flips] = returnFigures('P21', { time: 'time', flips: 'flips' }, 5, [run(40, 1), run(60, 1)], [run(200, 1), run(undefined, 3)], 'peer', 'the peer')
  t.same(time!.windows!.map((w) => [w.side, w.value]), [['ours', 40], ['ours', 60], ['peer', 200], ['peer', 5000]], 'never returned: the 5 s window')
  t.equal(time!.met, true, 'ours returned in every round')
  t.equal(time!.ratio, time!.baseline.median / time!.ours.median, 'the peer\'s time ÷ ours: > 1 means ours returned sooner')
  t.equal(flips!.met, true)
  t.same(flips!.baseline.samples, [1, 3])
  t.equal(flips!.baselineName, 'the peer')

  const [late, flapping] = returnFigures('R16', { time: 'time', flips: 'flips' }, 5, [run(undefined, 1), run(50, 2)], [run(10, 1)], 'peer', 'the peer')
  t.equal(late!.met, false, 'a round without the return misses the target')
  t.equal(flapping!.met, false, 'two changes of direction are oscillation')
})
