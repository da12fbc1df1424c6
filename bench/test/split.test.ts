import t from 'tap'
import { directionChanges, firstAnswer, majorityAfter, msOrNever, shareOf } from '../src/split.js'

// P20, P21 and R16: the pure reading of where the traffic went (their smoke rounds are in test/scenarios/).

const s = (due: number, done: number, instance: string, ok = true): { due: number, done: number, ok: boolean, instance: string } => ({ due, done, ok, instance })
const remote = (x: { instance?: string }): boolean => x.instance === 'dc2'

t.test('firstAnswer(): the first answer by a level to a request due from the start, signed against the reference', async (t) => {
  const samples = [
    s(900, 1300, 'dc2'), // due before `from`: not counted
    s(1000, 1010, 'dc1'),
    s(1100, 1400, 'dc2', false), // failed: not an answer
    s(1200, 1250, 'dc2'),
    s(1300, 1310, 'dc2')
  ]
  t.equal(firstAnswer(samples, remote, 1000, 1000), 250)
  t.equal(firstAnswer(samples, remote, 1000, 2000), -750, 'before the reference: negative')
  t.equal(firstAnswer(samples, (x) => x.instance === 'dc3', 1000, 1000), undefined, 'never')
})

t.test('majorityAfter(): more than half of the last n answers, in the order they ended', async (t) => {
  const samples = [
    s(0, 5, 'dc1'), // due before `from`
    s(100, 110, 'dc2'),
    s(110, 120, 'dc1'),
    s(120, 130, 'dc2'),
    s(130, 400, 'dc1', false), // failed
    s(140, 150, 'dc1'),
    s(150, 160, 'dc1')
  ]
  const local = (x: { instance?: string }): boolean => x.instance === 'dc1'
  t.equal(majorityAfter(samples, local, 100, 3), 50, 'dc1, dc2, dc1: the answer that ended at 150')
  t.equal(majorityAfter(samples, local, 100, 1), 20, 'n = 1: the first answer')
  t.equal(majorityAfter(samples, remote, 100, 3), 30, 'dc2, dc1, dc2 is a majority too')
  t.equal(majorityAfter(samples, remote, 100, 5), undefined, 'dc2 never held 3 of 5')
  t.equal(majorityAfter(samples, local, 100, 10), undefined, 'fewer answers than n')
  // A dc2 answer that slides out of the run counts no more: dc2, dc1, dc1 is no majority; then dc2, dc2 is.
  t.equal(majorityAfter([s(0, 10, 'dc2'), s(0, 20, 'dc1'), s(0, 30, 'dc1'), s(0, 40, 'dc2'), s(0, 50, 'dc2')], remote, 0, 3), 50, 'the run slides')
})

t.test('directionChanges(): a failover and its return is one change; flapping is more', async (t) => {
  t.equal(directionChanges([1, 0.7, 0, 0.7, 1]), 1)
  t.equal(directionChanges([1, 1, 0, 0, 1, 1]), 1, 'repeats are no move')
  t.equal(directionChanges([1, 0, 1, 0, 1]), 3)
  t.equal(directionChanges([1, 0]), 0, 'failed over, never back')
  t.equal(directionChanges([]), 0)
})

t.test('msOrNever() and shareOf(): the log\'s time, and a share that is 0 of no answers', async (t) => {
  t.equal(msOrNever(-4210.4), '-4210 ms')
  t.equal(msOrNever(undefined), 'never')
  t.equal(shareOf([s(0, 1, 'dc2'), s(0, 1, 'dc1'), s(0, 1, 'dc2'), s(0, 1, 'dc2')], remote), 0.75)
  t.equal(shareOf([], remote), 0, 'no answers: 0, not NaN')
})
