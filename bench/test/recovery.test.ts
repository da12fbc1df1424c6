import t from 'tap'
import { firstServed, recovery } from '../src/recovery.js'

// P23 and R20 (#30): the pure reading of a thawed replica's recovery (their smoke rounds are in
// test/scenarios/).

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
