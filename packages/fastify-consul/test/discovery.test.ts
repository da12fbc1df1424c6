import t from 'tap'
import { request, type Dispatcher } from 'undici'
import { startConsul, type ConsulAgent } from '@reg/testkit'
import { DiscoveryRegistry } from '../src/discovery/registry.js'
import { validateDiscoveryOptions, watchSettings, dispatchSettings, type DiscoverOptions, type DispatcherOptions } from '../src/discovery/options.js'
import type { Instance } from '../src/discovery/watch/instance.js'
import type { ServiceWatch, WatchState } from '../src/discovery/watch/service-watch.js'
import { consulHttp, countingDispatcher, deregister, ids, register, setCheck, until, untilState } from './fixtures/discovery-consul.js'
import { recordingLogger } from './fixtures/discovery-logger.js'

interface Teardown { teardown (fn: () => unknown): void }

// Short waits keep a test's worst case small; the index rules are what make changes arrive at once.
const QUICK: DiscoverOptions = { wait: '2s', backoff: { base: 20, cap: 200 } }

function discovery (t: Teardown, agent: Pick<ConsulAgent, 'address' | 'url'>, opts: { defaults?: DispatcherOptions, dispatcher?: Dispatcher } = {}): { d: DiscoveryRegistry, logger: ReturnType<typeof recordingLogger> } {
  const logger = recordingLogger()
  const d = new DiscoveryRegistry({ http: consulHttp(t, agent, { dispatcher: opts.dispatcher }), log: logger.log, defaults: { ...QUICK, ...opts.defaults } })
  t.teardown(() => d.close())
  return { d, logger }
}

function shares (watch: ServiceWatch, n: number): Record<string, number> {
  const out: Record<string, number> = {}
  for (let i = 0; i < n; i++) {
    const id = watch.pick().id
    out[id] = (out[id] ?? 0) + 1
  }
  return out
}

// No agent needed: options fail before anything starts.
const offline = { address: '127.0.0.1:1', url: 'http://127.0.0.1:1' }

t.test('invalid options: FST_REG_DISCOVERY_INVALID_OPTION before anything starts', async (t) => {
  const { d } = discovery(t, offline)
  const bad: Array<[string, unknown, unknown]> = [
    ['empty service', '', {}],
    ['service not a string', 42, {}],
    ['options not an object', 'web', 'fast'],
    ['tag', 'web', { tag: 5 }],
    ['empty dc', 'web', { dc: '' }],
    ['passingOnly', 'web', { passingOnly: 'yes' }],
    ['balancer', 'web', { balancer: 'least-loaded' }],
    ['wait format', 'web', { wait: '10h' }],
    ['wait too long as a number', 'web', { wait: 600_001 }],
    ['wait too long as a string', 'web', { wait: '11m' }],
    ['wait zero', 'web', { wait: '0s' }],
    ['staleTtl', 'web', { staleTtl: -1 }],
    ['backoff field', 'web', { backoff: { base: 0 } }],
    ['backoff cap below base', 'web', { backoff: { base: 500, cap: 100 } }],
    ['rateLimit', 'web', { rateLimit: { perSecond: 0 } }],
    ['random', 'web', { random: 0.5 }],
    ['unknown option', 'web', { tags: ['a'] }],
    ['a dispatcher option on discover()', 'web', { retries: 1 }]
  ]
  for (const [name, service, opts] of bad) {
    t.throws(() => d.discover(service as string, opts as DiscoverOptions), { code: 'FST_REG_DISCOVERY_INVALID_OPTION' }, name)
  }
  const badDispatcher: Array<[string, unknown]> = [
    ['retries', { retries: 11 }],
    ['retryBudget.ratio', { retryBudget: { ratio: 2 } }],
    ['ejectionMs', { ejectionMs: -1 }],
    ['ejectionMs format', { ejectionMs: '30 s' }],
    ['pool', { pool: [] }]
  ]
  for (const [name, opts] of badDispatcher) {
    t.throws(() => d.dispatcher('web', opts as DispatcherOptions), { code: 'FST_REG_DISCOVERY_INVALID_OPTION' }, name)
  }
  t.throws(() => validateDiscoveryOptions({ wait: 'soon' }, 'dispatcher', 'discovery'), { code: 'FST_REG_DISCOVERY_INVALID_OPTION', message: /discovery\.wait/ }, 'plugin-level defaults are checked with the same schema')
  t.throws(() => validateDiscoveryOptions(7, 'dispatcher', 'discovery'), { code: 'FST_REG_DISCOVERY_INVALID_OPTION' })
  t.equal(d.watchers, 0, 'nothing started')
})

t.test('option normalisation: defaults, durations, one key per distinct query', async (t) => {
  t.equal(watchSettings('web', { wait: 1500 }).wait, 1500)
  t.equal(watchSettings('web', { wait: '1.5s' }).wait, 1500)
  t.equal(watchSettings('web', { wait: '2m' }).wait, 120_000)
  t.equal(watchSettings('web', { staleTtl: '1m30s' }).staleTtl, 90_000)
  t.match(watchSettings('web', {}), {
    query: { service: 'web', passingOnly: false, stale: false },
    panicThreshold: 0.5,
    wait: 300_000,
    staleTtl: Infinity,
    backoff: { base: 200, cap: 30_000 },
    rateLimit: { perSecond: 10, burst: 10 }
  })
  t.match(dispatchSettings({}), { balancer: 'weighted', retries: 2, retryBudget: { ratio: 0.2, minPerSecond: 10, burst: 100 }, ejectionMs: 1000, pool: {} })
  t.throws(() => watchSettings('web', { backoff: { base: 60_000 } }), { code: 'FST_REG_DISCOVERY_INVALID_OPTION' }, 'a base above the default cap')
  const key = (o: DiscoverOptions): string => watchSettings('web', o).key
  t.equal(key({ balancer: 'random', wait: '1s', staleTtl: 1 }), key({}), 'balancer and tuning do not split a watcher')
  for (const o of [{ tag: 'a' }, { dc: 'dc2' }, { passingOnly: true }, { panicThreshold: 0 }, { filter: 'Service.Port > 1' }, { stale: true }] as DiscoverOptions[]) {
    t.not(key(o), key({}), JSON.stringify(o))
  }
})

t.test('three instances: picks rotate across all; instances carry what Consul says', async (t) => {
  const agent = await startConsul({ t })
  await register(agent, { name: 'web', id: 'web-1', port: 8001, tags: ['blue'], meta: { version: '2' } })
  await register(agent, { name: 'web', id: 'web-2', port: 8002, address: '127.0.0.2' })
  await register(agent, { name: 'web', id: 'web-3', port: 8003, address: '::1' })
  const { d } = discovery(t, agent)
  const watch = d.discover('web')
  t.equal(watch.state, 'starting')
  t.throws(() => watch.pick(), { code: 'FST_REG_DISCOVERY_NO_INSTANCE' }, 'nothing to pick before the first answer')
  await watch.ready
  t.equal(watch.state, 'live')
  t.equal(watch.service, 'web')
  const byId = Object.fromEntries(watch.instances.map((i) => [i.id, i]))
  t.same(byId['web-1'], {
    id: 'web-1',
    service: 'web',
    node: agent.nodeName,
    datacenter: 'dc1',
    nodeMeta: { 'consul-network-segment': '' },
    address: '127.0.0.1',
    port: 8001,
    host: '127.0.0.1',
    tags: ['blue'],
    meta: { version: '2' },
    weight: 1,
    status: 'passing',
    maintenance: false
  }, 'no Service.Address: the node’s address')
  t.equal(byId['web-2']!.address, '127.0.0.2')
  t.equal(byId['web-3']!.host, '[::1]')

  const first = Array.from({ length: 3 }, () => watch.pick().id)
  t.same([...first].sort(), ['web-1', 'web-2', 'web-3'], 'every instance once per round')
  t.same(Array.from({ length: 3 }, () => watch.pick().id), first, 'then the same order again')
})

t.test('an instance leaves on deregistration and on a failing check, and comes back when passing', async (t) => {
  const agent = await startConsul({ t })
  for (const n of [1, 2, 3]) await register(agent, { name: 'web', id: `web-${n}`, port: 8000 + n })
  const { d } = discovery(t, agent)
  // Plain filtering, without panic routing (tested on its own below).
  const watch = d.discover('web', { passingOnly: true, panicThreshold: 0 })
  await until(watch, (i) => i.length === 3, 'three instances')
  const changes: string[][] = []
  watch.on('change', (instances) => changes.push(ids(instances)))

  await deregister(agent, 'web-3')
  t.same(ids(await until(watch, (i) => i.length === 2, 'web-3 gone')), ['web-1', 'web-2'])
  await setCheck(agent, 'web-2', 'fail')
  t.same(ids(await until(watch, (i) => i.length === 1, 'web-2 critical')), ['web-1'])
  await setCheck(agent, 'web-2', 'warn')
  await setCheck(agent, 'web-2', 'pass')
  t.same(ids(await until(watch, (i) => i.length === 2, 'web-2 passing again')), ['web-1', 'web-2'])
  t.same(changes, [['web-1', 'web-2'], ['web-1'], ['web-1', 'web-2']], 'one event per real change; warning is still "not passing"')
  for (let i = 0; i < 4; i++) t.not(watch.pick().id, 'web-3')
})

t.test('passingOnly: false admits warning instances at their Warning weight; weighted shares follow', async (t) => {
  const agent = await startConsul({ t })
  const weights = { Passing: 3, Warning: 1 }
  await register(agent, { name: 'api', id: 'a', port: 9001, weights })
  await register(agent, { name: 'api', id: 'b', port: 9002, weights })
  await register(agent, { name: 'api', id: 'w', port: 9003, weights, status: 'warning' })
  await register(agent, { name: 'api', id: 'c', port: 9004, weights, status: 'critical' })
  const { d } = discovery(t, agent)

  const all = d.discover('api', { passingOnly: false, balancer: 'weighted', random: () => 0 })
  await until(all, (i) => i.length === 3, 'a, b and w')
  t.same(all.instances.map((i) => [i.id, i.status, i.weight]), [['a', 'passing', 3], ['b', 'passing', 3], ['w', 'warning', 1]], 'critical is never served')
  t.same(shares(all, 7 * 100), { a: 300, b: 300, w: 100 }, 'exactly 3 : 3 : 1')

  const passing = d.discover('api', { passingOnly: true })
  await passing.ready
  t.same(ids(passing.instances), ['a', 'b'], 'passingOnly leaves the warning instance out')
  const byDefault = d.discover('api')
  await byDefault.ready
  t.same(ids(byDefault.instances), ['a', 'b', 'w'], 'by default warning is routed to, at its lower weight')
  t.equal(d.watchers, 2, 'the default query is the passingOnly: false one: two watchers')
})

t.test('tag, filter and stale reach Consul', async (t) => {
  const agent = await startConsul({ t })
  await register(agent, { name: 'web', id: 'blue-1', port: 8001, tags: ['blue'], meta: { version: '1' } })
  await register(agent, { name: 'web', id: 'blue-2', port: 8002, tags: ['blue'], meta: { version: '2' } })
  await register(agent, { name: 'web', id: 'green-1', port: 8003, tags: ['green'], meta: { version: '2' } })
  const { d } = discovery(t, agent)
  const blue = d.discover('web', { tag: 'blue' })
  const v2 = d.discover('web', { filter: 'Service.Meta.version == "2"', stale: true })
  await Promise.all([blue.ready, v2.ready])
  t.same(ids(blue.instances), ['blue-1', 'blue-2'])
  t.same(ids(v2.instances), ['blue-2', 'green-1'])
})

t.test('many discover() calls for one query share one watcher and one HTTP loop', async (t) => {
  const agent = await startConsul({ t })
  const counter = countingDispatcher(t)
  await register(agent, { name: 'shared', id: 's-1', port: 8001 })
  const { d } = discovery(t, agent, { dispatcher: counter.dispatcher, defaults: { wait: '5m' } })
  const watches = Array.from({ length: 10 }, (_, i) => d.discover('shared', { balancer: i % 2 === 0 ? 'round-robin' : 'random' }))
  await Promise.all(watches.map((w) => w.ready))
  t.equal(d.watchers, 1)
  const everyone = Promise.all(watches.map((w) => until(w, (i) => i.length === 2, 's-2 seen')))
  await register(agent, { name: 'shared', id: 's-2', port: 8002 })
  await everyone
  // One first read, one blocking query that woke on s-2, and the one now waiting: ten loops would be 30.
  const requests = counter.count('/v1/health/service/shared')
  t.ok(requests <= 4, `${requests} requests for ten watches`)

  const other = d.discover('shared', { tag: 'x' })
  t.equal(d.watchers, 2, 'a different query gets its own watcher')
  await other.close()
  t.equal(d.watchers, 1)

  for (const w of watches.slice(1)) await w.close()
  t.equal(d.watchers, 1, 'still held by one handle')
  t.equal(watches[0]!.state, 'live')
  t.equal(watches[0]!.instances.length, 2)
  await watches[0]!.close()
  t.equal(d.watchers, 0, 'the last close stops the watcher')
  t.equal(watches[0]!.state, 'closed')
  t.same(watches[0]!.instances, [])
  t.throws(() => watches[0]!.pick(), { code: 'FST_REG_DISCOVERY_CLOSED' })
  await watches[0]!.close()
})

t.test('handles: ready rejects only when closed first; on/off; listeners see closed', async (t) => {
  const agent = await startConsul({ t })
  const { d } = discovery(t, agent)
  const early = d.discover('nothing-here')
  const states: WatchState[] = []
  early.on('state', (s) => states.push(s))
  const ignored = (): void => { t.fail('removed listener called') }
  early.on('change', ignored).off('change', ignored)
  early.on('state', ignored).off('state', ignored)
  await early.close()
  await t.rejects(early.ready, { code: 'FST_REG_DISCOVERY_CLOSED' })
  t.same(states, ['closed'])

  const late = d.discover('nothing-here')
  await late.ready
  t.same(late.instances, [], 'a service nobody registered is a (legitimate) empty set')
  t.throws(() => late.pick(), { code: 'FST_REG_DISCOVERY_NO_INSTANCE' })
  const unawaited = d.discover('nothing-either')
  await unawaited.close()
  t.pass('closing before ready with nobody awaiting `ready` raises no unhandled rejection')
})

t.test('agent.restart(): the watch recovers, with a long wait (the index is reset)', async (t) => {
  const agent = await startConsul({ t })
  await register(agent, { name: 'web', id: 'web-1', port: 8001 })
  // With a 5 min wait, a loop that kept the old agent's high index would block for 5 min here.
  const { d, logger } = discovery(t, agent, { defaults: { wait: '5m' } })
  const watch = d.discover('web')
  await until(watch, (i) => i.length === 1, 'web-1')
  await agent.restart()
  t.same(await until(watch, (i) => i.length === 0, 'the restarted agent’s empty catalog'), [], 'a -dev restart forgets everyone')
  t.equal(watch.state, 'live')
  await register(agent, { name: 'web', id: 'web-1', port: 8001 })
  t.same(ids(await until(watch, (i) => i.length === 1, 'web-1 registered again')), ['web-1'])
  t.equal(logger.at('error').length, 0)
})

t.test('agent.kill(): last-known-good while stale, cleared after staleTtl, then recovery', async (t) => {
  const agent = await startConsul({ t })
  await register(agent, { name: 'web', id: 'web-1', port: 8001 })
  const { d, logger } = discovery(t, agent, { defaults: { staleTtl: 500 } })
  const watch = d.discover('web')
  await until(watch, (i) => i.length === 1, 'web-1')
  const cleared = until(watch, (i) => i.length === 0, 'expiry')

  await agent.kill()
  await untilState(watch, 'stale')
  t.same(ids(watch.instances), ['web-1'], 'still served')
  t.equal(watch.pick().id, 'web-1')
  await untilState(watch, 'expired')
  await cleared
  t.throws(() => watch.pick(), { code: 'FST_REG_DISCOVERY_NO_INSTANCE' })
  t.equal(logger.at('warn').length, 1, 'one warning when it went stale')
  t.equal(logger.at('error').length, 1, 'one error when it expired')

  await agent.start()
  await register(agent, { name: 'web', id: 'web-1', port: 8001 })
  await until(watch, (i) => i.length === 1, 'recovery')
  t.equal(watch.state, 'live')
  t.equal(logger.at('info').filter((e) => e.msg === 'discovery recovered').length, 1)
})

t.test('close(): stops every watcher and dispatcher; nothing new afterwards', async (t) => {
  const agent = await startConsul({ t })
  await register(agent, { name: 'web', id: 'web-1', port: 8001 })
  const { d } = discovery(t, agent)
  const watch = d.discover('web')
  const dispatcher = d.dispatcher('web', { retries: 1 })
  const closedEarly = d.dispatcher('web')
  await Promise.all([watch.ready, dispatcher.ready])
  await closedEarly.close()
  t.equal(d.watchers, 1)
  await d.close()
  t.equal(d.watchers, 0)
  t.equal(watch.state, 'closed')
  await t.rejects(request('http://web/', { dispatcher }), { code: 'FST_REG_DISCOVERY_CLOSED' }, 'a closed dispatcher refuses requests')
  t.throws(() => d.discover('web'), { code: 'FST_REG_DISCOVERY_CLOSED' })
  t.throws(() => d.dispatcher('web'), { code: 'FST_REG_DISCOVERY_CLOSED' })
  await d.close()
  const last: Instance[] = [...watch.instances]
  t.same(last, [])
})
