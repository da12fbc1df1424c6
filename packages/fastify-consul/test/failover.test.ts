import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { request } from 'undici'
import { startConsulFederation, testMeter, type ConsulAgent } from '@reg/testkit'
import { consulMetrics } from '../src/metrics.js'
import consulPlugin from '../src/index.js'
import { DiscoveryRegistry } from '../src/discovery/registry.js'
import type { DiscoverOptions } from '../src/discovery/options.js'
import type { Instance } from '../src/discovery/watch/instance.js'
import type { ServiceWatch } from '../src/discovery/watch/service-watch.js'
import { consulHttp, register, setCheck, until, upstream, within, type Upstream } from './fixtures/discovery-consul.js'
import { recordingLogger } from './fixtures/discovery-logger.js'

// Failover across datacenters and locality inside one (#25), on two real -dev agents WAN-joined on
// loopback: dc1 is the apps' local agent, dc2 the remote one, read through dc1 with ?dc=dc2. One
// federation for the file; each test uses its own service name.

const QUICK: DiscoverOptions = { wait: '2s', backoff: { base: 20, cap: 200 } }
const fed = await startConsulFederation({ t })
const dc1 = fed.agents.dc1!
const dc2 = fed.agents.dc2!

function registry (t: Test): { d: DiscoveryRegistry, logger: ReturnType<typeof recordingLogger> } {
  const logger = recordingLogger()
  const d = new DiscoveryRegistry({ http: consulHttp(t, dc1), log: logger.log, defaults: QUICK })
  t.teardown(() => d.close())
  return { d, logger }
}

const loads = (w: ServiceWatch): number[] => w.priorities.map((p) => Number(p.load.toFixed(3)))
const dcs = (instances: readonly Instance[]): string[] => [...new Set(instances.map((i) => i.datacenter))].sort()

/** Two replicas of `name` in `agent`'s datacenter, each a real HTTP server answering its id. */
async function replicas (t: Test, agent: ConsulAgent, name: string, dc: string, meta?: Record<string, string>, servers: Upstream[] = []): Promise<string[]> {
  const ids: string[] = []
  for (const n of [1, 2]) {
    const id = `${name}-${dc}-${n}`
    const u = await upstream(t, id)
    servers.push(u)
    await register(agent, { name, id, port: u.port, address: '127.0.0.1', ...(meta !== undefined && { meta }) })
    ids.push(id)
  }
  return ids
}

async function splitBecomes (w: ServiceWatch, want: number[]): Promise<void> {
  await within(`split ${want.join('/')} (now ${loads(w).join('/')})`, new Promise<void>((resolve) => {
    const check = (): void => {
      if (loads(w).join('/') === want.join('/')) {
        w.off('change', check)
        resolve()
      }
    }
    w.on('change', check)
    check()
  }))
}

t.test('dc1 healthy takes everything; dc1 lost fails over to dc2; dc1 back takes it back, without flapping', async (t) => {
  const [a1, a2] = await replicas(t, dc1, 'fo-web', 'dc1')
  await replicas(t, dc2, 'fo-web', 'dc2')
  const { d, logger } = registry(t)
  const watch = d.discover('fo-web', { failover: { datacenters: ['dc2'] } })
  const dispatcher = d.dispatcher(watch, { retries: 0 })
  await watch.ready
  await splitBecomes(watch, [1, 0])
  t.same(watch.priorities.map((p) => [p.datacenter, p.state]), [[undefined, 'live'], ['dc2', 'live']], 'the own datacenter, then dc2')
  t.same(dcs(watch.instances), ['dc1'], 'only local instances are routed to')
  t.same(dcs(watch.all), ['dc1', 'dc2'], 'both datacenters are watched')
  const answer = async (): Promise<string> => ((await (await request('http://fo-web/', { dispatcher })).body.json()) as { id: string }).id

  t.match(await answer(), /^fo-web-dc1-/)
  // Half of dc1 failing: 1.4 × 0.5 = 70 % stays local (Envoy's overprovisioning).
  await setCheck(dc1, a1!, 'fail')
  await splitBecomes(watch, [0.7, 0.3])
  const seen = new Set<string>()
  for (let i = 0; i < 60; i++) seen.add((await answer()).split('-')[2]!)
  t.same([...seen].sort(), ['dc1', 'dc2'], 'a split serves from both datacenters')
  // Every dc1 replica failing: all traffic to dc2, through the same dispatcher.
  await setCheck(dc1, a2!, 'fail')
  await splitBecomes(watch, [0, 1])
  t.equal(watch.panic, false, 'dc2 is healthy: no panic')
  for (let i = 0; i < 10; i++) t.match(await answer(), /^fo-web-dc2-/, 'served by dc2')
  // Both back: local again.
  await setCheck(dc1, a1!, 'pass')
  await setCheck(dc1, a2!, 'pass')
  await splitBecomes(watch, [1, 0])
  t.match(await answer(), /^fo-web-dc1-/)
  // The trace: one log line per change of split, and no flip back and forth in between.
  const trace = logger.entries.filter((e) => e.msg === 'discovery traffic split changed').map((e) => (e.obj.split as Array<{ load: number }>).map((s) => s.load).join('/'))
  t.same(trace.filter((s, i) => s !== trace[i - 1]), trace, 'each line is a change')
  // dc1's share goes down while it fails and up while it heals: one change of direction, no flapping.
  const local = trace.map((s) => Number(s.split('/')[0]))
  const turns = local.slice(1).map((v, i) => Math.sign(v - local[i]!)).filter((d, i, a) => i > 0 && d !== a[i - 1])
  t.equal(turns.length, 1, `down once, then up once: ${trace.join(' → ')}`)
  t.same([trace[0], trace.at(-1)], ['1/0', '1/0'])
})

t.test('dc1\'s replicas all die before Consul notices: the last try of each request goes to dc2, and none fails', async (t) => {
  const local: Upstream[] = []
  await replicas(t, dc1, 'fo-dies', 'dc1', undefined, local)
  await replicas(t, dc2, 'fo-dies', 'dc2')
  const { d } = registry(t)
  const dispatcher = d.dispatcher('fo-dies', { failover: { datacenters: ['dc2'] } })
  await dispatcher.ready
  const answer = async (): Promise<string> => ((await (await request('http://fo-dies/', { dispatcher })).body.json()) as { id: string }).id
  t.match(await answer(), /^fo-dies-dc1-/)
  for (const u of local) await u.stop()
  t.same(loads(dispatcher.watch), [1, 0], 'Consul still says dc1 is healthy')
  const served: string[] = []
  for (let i = 0; i < 30; i++) served.push(await answer())
  t.ok(served.every((id) => id.startsWith('fo-dies-dc2-')), 'every request served, by dc2')
  t.equal(dispatcher.stats.requests, 31)
})

t.test('nearest: 1 finds dc2 by Consul\'s ranking; a plain dc2 watch shares its query', async (t) => {
  await replicas(t, dc2, 'fo-near', 'dc2')
  const { d } = registry(t)
  const watch = d.discover('fo-near', { failover: { nearest: 1 } })
  await watch.ready
  await until(watch, (i) => i.length === 2, 'dc2 instances, nothing local')
  t.same(dcs(watch.instances), ['dc2'], 'nothing in dc1: everything to the nearest other datacenter')
  t.same(watch.priorities.map((p) => p.datacenter), [undefined, 'dc2'])
  // Metrics read the datacenters' own watchers, each labelled with its datacenter.
  const m = testMeter(t)
  const meters = consulMetrics(m.provider, { registration: () => ({ service: 'me', id: undefined, state: 'unregistered' }), watchers: () => d.running, onHealed: () => () => {} })
  t.teardown(() => meters.close())
  t.equal(await m.value('reg_discovery_instances', { service: 'fo-near', datacenter: 'dc2', status: 'passing' }), 2)
  t.equal(await m.value('reg_discovery_instances', { service: 'fo-near', status: 'passing' }), 2, 'no dc1 instance, and the failover watch is not counted twice')
  const before = d.watchers
  const plain = d.discover('fo-near', { dc: 'dc2' })
  t.equal(d.watchers, before, 'the dc2 watch is the failover watch\'s dc2 watcher')
  await plain.close()
  await watch.close()
  t.equal(d.watchers, 0, 'closing the last holder stops the datacenters\' watchers too')
})

t.test('an unknown datacenter refuses ready with a coded error naming the field; the own datacenter still routes', async (t) => {
  await replicas(t, dc1, 'fo-typo', 'dc1')
  const { d, logger } = registry(t)
  const watch = d.discover('fo-typo', { failover: { datacenters: ['dc2', 'dc3'] } })
  await t.rejects(watch.ready, {
    code: 'FST_REG_DISCOVERY_UNKNOWN_DATACENTER',
    message: 'Invalid discovery option failover.datacenters[1]: Consul knows no datacenter "dc3" (it knows "dc1", "dc2")'
  })
  await until(watch, (i) => i.length === 2, 'the local replicas')
  t.same(watch.priorities.map((p) => p.datacenter), [undefined], 'no failover level was added')
  t.equal(logger.at('error').filter((e) => e.msg?.startsWith('discovery failover refused')).length, 1, 'logged once')
})

t.test('the plugin\'s failover list is checked at ready(): FST_REG_* naming discovery.failover.datacenters[i]', async (t) => {
  const bad = Fastify()
  bad.register(consulPlugin, { service: { name: 'fo-app' }, register: false, consul: { address: dc1.address }, discovery: { failover: { datacenters: ['dc2', 'dc-9'] } } })
  await t.rejects(async () => { await bad.ready() }, { code: 'FST_REG_DISCOVERY_UNKNOWN_DATACENTER', message: /discovery\.failover\.datacenters\[1\]: Consul knows no datacenter "dc-9"/ })
  await bad.close()
  // Negative control: the same app with a known name boots.
  const good = Fastify()
  good.register(consulPlugin, { service: { name: 'fo-app' }, register: false, consul: { address: dc1.address }, discovery: { failover: { datacenters: ['dc2'] } } })
  await good.ready()
  await good.close()
})

t.test('locality: the caller\'s zone takes everything while healthy, and spills to the other zone when it is lost', async (t) => {
  const [za1, za2] = await replicas(t, dc1, 'fo-zone', 'a', { zone: 'a' })
  await replicas(t, dc1, 'fo-zone', 'b', { zone: 'b' })
  const { d } = registry(t)
  const watch = d.discover('fo-zone', { locality: { zone: 'a' } })
  await watch.ready
  await splitBecomes(watch, [1, 0])
  t.same(watch.instances.map((i) => i.meta.zone), ['a', 'a'])
  t.same(watch.priorities.map((p) => p.zone), ['a', undefined])
  await setCheck(dc1, za1!, 'fail')
  await setCheck(dc1, za2!, 'fail')
  await splitBecomes(watch, [0, 1])
  t.same(watch.instances.map((i) => i.meta.zone), ['b', 'b'], 'zone a lost: zone b serves, no panic')
  await setCheck(dc1, za1!, 'pass')
  await setCheck(dc1, za2!, 'pass')
  await splitBecomes(watch, [1, 0])
  t.throws(() => d.discover('fo-zone', { locality: true }), { code: 'FST_REG_DISCOVERY_INVALID_OPTION', message: /locality\.zone/ }, 'locality: true without a zone of our own')
})

t.test('registration carries the zone: service.zone, else REG_ZONE, as meta "zone"', async (t) => {
  const meta = async (id: string): Promise<Record<string, string>> => {
    const res = await request(`${dc1.url}/v1/agent/service/${id}`)
    return ((await res.body.json()) as { Meta: Record<string, string> }).Meta
  }
  const app = Fastify()
  await app.register(consulPlugin, { service: { name: 'fo-zoned', id: 'fo-zoned-1', port: 1, zone: 'eu-1a' }, check: false, consul: { address: dc1.address } })
  await app.ready()
  await app.consul.register()
  t.same(await meta('fo-zoned-1'), { zone: 'eu-1a' })
  await app.close()
  const was = process.env.REG_ZONE
  process.env.REG_ZONE = 'eu-1b'
  t.teardown(() => { if (was === undefined) delete process.env.REG_ZONE; else process.env.REG_ZONE = was })
  const fromEnv = Fastify()
  await fromEnv.register(consulPlugin, { service: { name: 'fo-zoned', id: 'fo-zoned-2', port: 2 }, check: false, consul: { address: dc1.address } })
  await fromEnv.ready()
  await fromEnv.consul.register()
  t.same(await meta('fo-zoned-2'), { zone: 'eu-1b' })
  await fromEnv.close()
  const clash = Fastify()
  clash.register(consulPlugin, { service: { name: 'fo-zoned', meta: { zone: 'x' } }, consul: { address: dc1.address } })
  await t.rejects(async () => { await clash.ready() }, { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /service\.meta\.zone/ }, 'REG_ZONE and meta.zone disagree')
  const clash2 = Fastify()
  clash2.register(consulPlugin, { service: { name: 'fo-zoned', zone: 'y', meta: { zone: 'x' } }, consul: { address: dc1.address } })
  await t.rejects(async () => { await clash2.ready() }, { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /service\.zone: .*"y".*"x"/ }, 'service.zone and meta.zone disagree')
  const same = Fastify()
  same.register(consulPlugin, { service: { name: 'fo-zoned', zone: 'x', meta: { zone: 'x' } }, register: false, consul: { address: dc1.address } })
  await same.ready()
  await same.close()
})

// Last: it kills dc2's agent.
t.test('a remote datacenter that cannot be read keeps its last instances, marked stale; local routing is untouched', async (t) => {
  const [l1, l2] = await replicas(t, dc1, 'fo-stale', 'dc1')
  await replicas(t, dc2, 'fo-stale', 'dc2')
  const { d } = registry(t)
  const watch = d.discover('fo-stale', { failover: { datacenters: ['dc2'] } })
  await watch.ready
  t.equal(watch.all.length, 4, 'ready: both datacenters were read')
  await dc2.kill()
  await within('dc2 stale', new Promise<void>((resolve) => {
    const timer = setInterval(() => { if (watch.priorities[1]?.state === 'stale') { clearInterval(timer); resolve() } }, 50)
  }), 60_000)
  t.equal(watch.state, 'live', 'the watch itself is live: its own datacenter answers')
  t.same(dcs(watch.instances), ['dc1'], 'local routing untouched')
  t.equal(watch.all.filter((i) => i.datacenter === 'dc2').length, 2, 'dc2\'s last known instances are kept')
  // Fail static across datacenters: dc1 lost too, and the stale dc2 instances are what we route to.
  await setCheck(dc1, l1!, 'fail')
  await setCheck(dc1, l2!, 'fail')
  await splitBecomes(watch, [0, 1])
  t.same(dcs(watch.instances), ['dc2'])
})
