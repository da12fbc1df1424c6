import t, { type Test } from 'tap'
import { request } from 'undici'
import { BalancedDispatcher } from '../src/discovery/dispatch/dispatcher.js'
import { dispatchSettings } from '../src/discovery/options.js'
import type { Instance } from '../src/discovery/watch/instance.js'
import { upstream, type Upstream } from './fixtures/discovery-consul.js'
import { recordingLogger } from './fixtures/discovery-logger.js'
import { StaticWatch, instanceAt } from './fixtures/discovery-static-watch.js'
import { gaveUp } from './fixtures/dispatch-failed.js'

// The last try spills to the next priority level (#25): when a whole datacenter dies faster than
// Consul notices, every try on it is refused, and the one try elsewhere is what keeps the request.
// Real HTTP servers on loopback; the watch is static so the test decides what Consul would say.

const at = (u: Upstream): Instance => instanceAt(u.id, u.port)
async function dead (t: Test, id: string): Promise<Upstream> {
  const u = await upstream(t, id)
  await u.stop()
  return u
}
function dispatcher (t: Test, watch: StaticWatch, retries: number): BalancedDispatcher {
  const d = new BalancedDispatcher({ ...dispatchSettings({ retries }), watch, log: recordingLogger().log, random: Math.random })
  t.teardown(() => d.close())
  return d
}
async function get (d: BalancedDispatcher): Promise<string> {
  const res = await request('http://svc/', { dispatcher: d })
  return ((await res.body.json()) as { id: string }).id
}

t.test('every routed instance refuses: the last try goes to the fallback level, and the request succeeds', async (t) => {
  const local = [await dead(t, 'dc1-a'), await dead(t, 'dc1-b'), await dead(t, 'dc1-c')]
  const remote = [await upstream(t, 'dc2-a'), await upstream(t, 'dc2-b')]
  const watch = new StaticWatch(local.map(at))
  watch.set(local.map(at), remote.map(at))
  const d = dispatcher(t, watch, 2)
  for (let i = 0; i < 20; i++) t.match(await get(d), /^dc2-/, `request ${i} served by the fallback`)
  t.ok(remote.every((u) => u.received.length > 0), 'spread over the fallback level, not one instance')
})

t.test('negative control: without a fallback level the same requests fail', async (t) => {
  const local = [await dead(t, 'dc1-a'), await dead(t, 'dc1-b'), await dead(t, 'dc1-c')]
  const d = dispatcher(t, new StaticWatch(local.map(at)), 2)
  await t.rejects(get(d), gaveUp('ECONNREFUSED'))
})

t.test('a healthy routed level: the fallback is never tried; only the last try may spill', async (t) => {
  const local = [await upstream(t, 'dc1-a'), await upstream(t, 'dc1-b')]
  const remote = await upstream(t, 'dc2-a')
  const watch = new StaticWatch(local.map(at))
  watch.set(local.map(at), [at(remote)])
  const d = dispatcher(t, watch, 2)
  for (let i = 0; i < 20; i++) t.match(await get(d), /^dc1-/)
  t.equal(remote.received.length, 0, 'no request left the healthy level')
  // One local replica dies: its request is retried on the other local one (a second try, not the last).
  await local[0]!.stop()
  for (let i = 0; i < 10; i++) t.equal(await get(d), 'dc1-b')
  t.equal(remote.received.length, 0, 'a retry that is not the last stays local')
})

t.test('retries: 0 means one try: nothing spills', async (t) => {
  const local = await dead(t, 'dc1-a')
  const remote = await upstream(t, 'dc2-a')
  const watch = new StaticWatch([at(local)])
  watch.set([at(local)], [at(remote)])
  await t.rejects(get(dispatcher(t, watch, 0)), gaveUp('ECONNREFUSED'))
  t.equal(remote.received.length, 0)
})

t.test('a whole level refuses: its instances are ejected past the cap, first attempts go to the fallback, no retry is refused', async (t) => {
  // Two of two local instances dead, two remote: the default cap (maxEjectionPercent 50) counts the four
  // reachable instances, so both local ones can go, and requests stop paying a failed first try. Before
  // (#25's P20), the cap kept one dead local instance routed: every request failed there first, the
  // failures closed the retry throttle, and refused retries became failed requests.
  const local = [await dead(t, 'dc1-a'), await dead(t, 'dc1-b')]
  const remote = [await upstream(t, 'dc2-a'), await upstream(t, 'dc2-b')]
  const watch = new StaticWatch(local.map(at))
  watch.set(local.map(at), remote.map(at))
  const d = dispatcher(t, watch, 2)
  for (let i = 0; i < 200; i++) t.match(await get(d), /^dc2-/, `request ${i} served`)
  t.same(d.ejected.map((i) => i.id).sort(), ['dc1-a', 'dc1-b'], 'both refusing local instances ejected')
  t.equal(d.stats.retriesDenied, 0, 'no retry refused by the throttle or the budget')
  t.ok(d.stats.retries < 20, `first attempts went to the fallback once the level was out (${d.stats.retries} retries for 200 requests)`)
  t.ok(remote.every((u) => u.received.length > 0), 'spread over the fallback level')
})

t.test('negative control: without a fallback level the cap keeps one of the two dead instances routed (panic, as before)', async (t) => {
  const local = [await dead(t, 'dc1-a'), await dead(t, 'dc1-b')]
  const d = dispatcher(t, new StaticWatch(local.map(at)), 2)
  for (let i = 0; i < 10; i++) await t.rejects(get(d), gaveUp('ECONNREFUSED'))
  t.equal(d.ejected.length, 1, 'one ejected: the cap keeps half of what is reachable')
})
