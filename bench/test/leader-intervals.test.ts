import t from 'tap'
import { leadership, twoLeaderInstants } from '../src/leader-intervals.js'

t.test('leadership pairs elected with the next lost, and closes an open one at the end', async (t) => {
  t.same(leadership([], 50), [])
  t.same(leadership([{ event: 'elected', at: 1 }, { event: 'lost', at: 4 }, { event: 'elected', at: 6 }], 10), [{ from: 1, to: 4 }, { from: 6, to: 10 }])
  // A lost without an election (a follower stopped) and a repeated elected add nothing.
  t.same(leadership([{ event: 'lost', at: 1 }, { event: 'elected', at: 2 }, { event: 'elected', at: 3 }, { event: 'lost', at: 5 }], 10), [{ from: 2, to: 5 }])
})

t.test('twoLeaderInstants counts each rise to two leaders once', async (t) => {
  t.equal(twoLeaderInstants([]), 0)
  // Handovers back to back, and with a gap: never two leaders.
  t.equal(twoLeaderInstants([{ from: 0, to: 5 }, { from: 5, to: 9 }, { from: 12, to: 20 }]), 0, 'an end at the same instant as the next start is a handover')
  // Negative control: the same intervals overlapping by 1 ms count.
  t.equal(twoLeaderInstants([{ from: 0, to: 6 }, { from: 5, to: 9 }]), 1)
  t.equal(twoLeaderInstants([{ from: 0, to: 6 }, { from: 5, to: 9 }, { from: 8, to: 12 }]), 2, 'two separate overlaps')
  t.equal(twoLeaderInstants([{ from: 0, to: 10 }, { from: 2, to: 8 }, { from: 3, to: 4 }]), 1, 'a third leader inside an overlap is the same instant')
  t.equal(twoLeaderInstants([{ from: 5, to: 9 }, { from: 0, to: 6 }]), 1, 'in any order')
})
