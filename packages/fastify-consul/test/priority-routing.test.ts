import t from 'tap'
import type { Instance } from '../src/discovery/watch/instance.js'
import { OVERPROVISIONING, prioritize, route } from '../src/discovery/watch/routing.js'
import { zoneLevels, zoneOf } from '../src/discovery/watch/locality.js'
import { failoverOrder } from '../src/discovery/watch/failover-datacenters.js'

// Priority routing across datacenters and zones (#25): pure rules, no Consul. The real-agent side is
// failover.test.ts.

let n = 0
function inst (datacenter: string, status: Instance['status'], over: Partial<Instance> = {}): Instance {
  const id = `${datacenter}-${n++}`
  return Object.freeze({ id, service: 's', node: `node-${id}`, datacenter, nodeMeta: {}, address: '127.0.0.1', port: 1000 + n, host: '127.0.0.1', tags: [], meta: {}, weight: status === 'critical' ? 0 : status === 'warning' ? 1 : 10, status, maintenance: false, ...over })
}
const fleet = (dc: string, passing: number, critical: number): Instance[] => [
  ...Array.from({ length: passing }, () => inst(dc, 'passing')),
  ...Array.from({ length: critical }, () => inst(dc, 'critical'))
]
const loads = (levels: ReadonlyArray<readonly Instance[]>, threshold = 0.5): number[] => prioritize(levels, false, threshold).levels.map((l) => Number(l.load.toFixed(4)))
/** The share of the total weight each datacenter gets: what the weighted balancers deliver. */
function weightShare (instances: readonly Instance[]): Record<string, number> {
  const total = instances.reduce((s, i) => s + i.weight, 0)
  const out: Record<string, number> = {}
  for (const i of instances) out[i.datacenter] = Number((((out[i.datacenter] ?? 0) + i.weight / total)).toFixed(3))
  return out
}

t.test('a healthy local datacenter takes all the traffic, with Consul\'s weights unchanged', async (t) => {
  const dc1 = fleet('dc1', 4, 0)
  const r = prioritize([dc1, fleet('dc2', 4, 0)], false, 0.5)
  t.same(r.levels.map((l) => l.load), [1, 0])
  t.same(r.instances, dc1, 'the same frozen instances: no rescaling with one loaded level')
  t.equal(r.panic, false)
})

t.test('the local level keeps everything down to 1/1.4 healthy, then spills in proportion (Envoy)', async (t) => {
  t.equal(OVERPROVISIONING, 1.4)
  const dc2 = fleet('dc2', 4, 0)
  t.same(loads([fleet('dc1', 3, 1), dc2]), [1, 0], '75 % healthy ≥ 71 %: all local')
  t.same(loads([fleet('dc1', 5, 5), dc2]), [0.7, 0.3], '50 % healthy: 1.4 × 0.5 = 70 % local')
  t.same(loads([fleet('dc1', 1, 3), dc2]), [0.35, 0.65], '25 %: 35 % local, the rest spills')
  t.same(loads([fleet('dc1', 0, 4), dc2]), [0, 1], 'every local replica down: all to dc2')
  const r = prioritize([fleet('dc1', 5, 5), dc2], false, 0.5)
  t.same(weightShare(r.instances), { dc1: 0.7, dc2: 0.3 }, 'the split reaches the balancers as weight')
  t.ok(r.instances.every((i) => i.status === 'passing'), 'only healthy instances: no level is in panic')
  t.ok(r.instances.every((i) => Number.isInteger(i.weight) && i.weight >= 1), 'integer weights for the smooth schedule')
})

t.test('spill goes in order: a third level only takes what the first two cannot', async (t) => {
  t.same(loads([fleet('dc1', 1, 3), fleet('dc2', 1, 3), fleet('dc3', 4, 0)]), [0.35, 0.35, 0.3])
  t.same(loads([fleet('dc1', 1, 3), fleet('dc2', 4, 0), fleet('dc3', 4, 0)]), [0.35, 0.65, 0])
})

t.test('panic only when every level is below the threshold; then each loaded level routes to all its candidates', async (t) => {
  // dc1 at 20 % and dc2 at 50 %: dc2 is not below 0.5, so no panic; healths 0.28 + 0.7 < 1 are normalized.
  const calm = prioritize([fleet('dc1', 1, 4), fleet('dc2', 1, 1)], false, 0.5)
  t.equal(calm.panic, false)
  t.same(calm.levels.map((l) => Number(l.load.toFixed(4))), [0.2857, 0.7143], 'normalized: 0.28 / 0.98 and 0.7 / 0.98')
  t.ok(calm.instances.every((i) => i.status === 'passing'))
  const worse = prioritize([fleet('dc1', 1, 4), fleet('dc2', 0, 2)], false, 0.5)
  t.equal(worse.panic, true, 'every datacenter short: panic')
  t.same(worse.levels.map((l) => l.load), [1, 0], 'dc2 has no health at all: dc1 keeps the traffic')
  t.equal(worse.instances.length, 5, 'all five dc1 candidates, the critical ones at weight 1')
  t.equal(worse.instances.filter((i) => i.status === 'critical' && i.weight === 1).length, 4)
  const dead = prioritize([fleet('dc1', 0, 3), fleet('dc2', 0, 2)], false, 0.5)
  t.same([dead.panic, dead.levels.map((l) => l.load)], [true, [1, 0]], 'nothing healthy anywhere: the first level, in panic (Envoy sends it to P0)')
  const localGone = prioritize([[], fleet('dc2', 0, 2)], false, 0.5)
  t.same([localGone.panic, localGone.levels.map((l) => l.load), localGone.instances.length], [true, [0, 1], 2], 'an empty first level: the first level with candidates')
})

t.test('maintenance is obeyed on every level; an all-maintenance datacenter fails over', async (t) => {
  const maint = fleet('dc1', 3, 0).map((i) => Object.freeze({ ...i, maintenance: true }))
  const dc2 = fleet('dc2', 2, 0)
  const r = prioritize([maint, dc2], false, 0.5)
  t.same(r.levels.map((l) => l.load), [0, 1])
  t.same(r.instances, dc2)
  t.same(prioritize([maint, []], false, 0.5).instances, [], 'nothing but maintenance: nothing')
})

t.test('route() is the one-level case of prioritize()', async (t) => {
  const one = fleet('dc1', 1, 3)
  t.same(route(one, false, 0.5), prioritize([one], false, 0.5))
  t.same(route(one, false, 0.5).levels, [{ routable: 1, candidates: 4, health: 0.35, load: 1 }])
})

t.test('locality: the caller\'s zone first, by service meta, else node meta', async (t) => {
  const a1 = inst('dc1', 'passing', { meta: { zone: 'a' } })
  const a2 = inst('dc1', 'passing', { nodeMeta: { zone: 'a' } })
  const b1 = inst('dc1', 'passing', { meta: { zone: 'b' }, nodeMeta: { zone: 'a' } })
  const none = inst('dc1', 'passing')
  t.equal(zoneOf(b1, 'zone'), 'b', 'service meta wins over node meta')
  t.same(zoneLevels([a1, a2, b1, none], { zone: 'a', key: 'zone' }), [[a1, a2], [b1, none]])
  t.same(zoneLevels([a1, b1], undefined), [[a1, b1]], 'no locality: one level')
  t.same(zoneLevels([a1], { zone: 'a', key: 'az' }), [[], [a1]], 'a custom key')
  // 2 zones × 2 replicas; zone a lost: all to b; one of a back: 70 % local.
  const zoneA = [inst('dc1', 'critical', { meta: { zone: 'a' } }), inst('dc1', 'critical', { meta: { zone: 'a' } })]
  const zoneB = [inst('dc1', 'passing', { meta: { zone: 'b' } }), inst('dc1', 'passing', { meta: { zone: 'b' } })]
  t.same(loads(zoneLevels([...zoneA, ...zoneB], { zone: 'a', key: 'zone' })), [0, 1])
  const half = [Object.freeze({ ...zoneA[0]!, status: 'passing' as const, weight: 10 }), zoneA[1]!]
  t.same(loads(zoneLevels([...half, ...zoneB], { zone: 'a', key: 'zone' })), [0.7, 0.3])
})

t.test('failoverOrder: nearest by Consul\'s ranking first, then the named ones, each once, never the own', async (t) => {
  const facts = { local: 'dc1', known: ['dc1', 'dc3', 'dc2', 'dc4'] }
  const field = 'failover'
  t.same(failoverOrder({ datacenters: ['dc2'], nearest: 0, field }, facts, undefined), ['dc2'])
  t.same(failoverOrder({ datacenters: [], nearest: 2, field }, facts, undefined), ['dc3', 'dc2'])
  t.same(failoverOrder({ datacenters: ['dc4', 'dc3'], nearest: 1, field }, facts, undefined), ['dc3', 'dc4'])
  t.same(failoverOrder({ datacenters: ['dc1', 'dc2'], nearest: 0, field }, facts, undefined), ['dc2'], 'the own datacenter is priority 0 already')
  t.same(failoverOrder({ datacenters: ['dc1'], nearest: 1, field }, facts, 'dc3'), ['dc1'], 'a watch on dc3 fails over to dc1')
  t.throws(() => failoverOrder({ datacenters: ['dc2', 'dc9'], nearest: 0, field: 'discovery.failover' }, facts, undefined), {
    code: 'FST_REG_DISCOVERY_UNKNOWN_DATACENTER',
    message: 'Invalid discovery option discovery.failover.datacenters[1]: Consul knows no datacenter "dc9" (it knows "dc1", "dc3", "dc2", "dc4")'
  })
})

t.test('fallback: the healthy instances of the first level that takes no traffic', async (t) => {
  const dc2 = fleet('dc2', 2, 1)
  const healthy = prioritize([fleet('dc1', 3, 0), dc2, fleet('dc3', 2, 0)], false, 0.5)
  t.same(healthy.fallback, dc2.slice(0, 2), 'dc2\'s healthy instances, at Consul\'s weights')
  const spilled = prioritize([fleet('dc1', 1, 3), dc2, fleet('dc3', 2, 0)], false, 0.5)
  t.same(spilled.levels.map((l) => l.load > 0), [true, true, false])
  t.same(spilled.fallback.map((i) => i.datacenter), ['dc3', 'dc3'], 'dc2 is loaded already: dc3 is next')
  t.same(prioritize([fleet('dc1', 3, 0)], false, 0.5).fallback, [], 'one level: none')
  t.same(prioritize([fleet('dc1', 3, 0), fleet('dc2', 0, 2)], false, 0.5).fallback, [], 'no healthy instance in the next level: none')
})
