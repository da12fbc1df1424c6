import t, { type Test } from 'tap'
import { DiscoveryRegistry } from '../src/discovery/registry.js'
import { checkFailoverDatacenters } from '../src/discovery/registry.js'
import type { ServiceWatch } from '../src/discovery/watch/service-watch.js'
import { consulHttp, within } from './fixtures/discovery-consul.js'
import { faultServer, type FaultReply } from './fixtures/discovery-fault-server.js'
import { recordingLogger } from './fixtures/discovery-logger.js'

// The failover watch against a scripted agent (discovery-fault-server): what a real agent does not do
// on demand (garbage from /v1/agent/self, a stop while the datacenter list is on its way, a listener
// that throws). The real-agent behaviour is failover.test.ts.

const HOLD: FaultReply = { hold: true }
type Status = 'passing' | 'critical'

function body (dc: string, ids: Array<[string, Status, string?]>): string {
  return JSON.stringify(ids.map(([id, status, zone]) => ({
    Node: { Node: `node-${dc}`, Address: '127.0.0.1', Datacenter: dc, Meta: null },
    Service: { ID: id, Service: 'web', Address: '', Port: 8000 + id.length, Tags: [], Meta: zone === undefined ? null : { zone }, Weights: { Passing: 1, Warning: 1 } },
    Checks: [{ Status: status, CheckID: `service:${id}` }]
  })))
}

interface Agent {
  /** Answers to /v1/agent/self, in order; the last one repeats. */
  self?: string[]
  datacenters?: string
  nodes?: string
  /** Health answers per datacenter ('' for the local one), in order; then every blocking query is held. */
  health: Record<string, string[]>
}

async function agent (t: Test, spec: Agent): Promise<Awaited<ReturnType<typeof faultServer>>> {
  let selfCalls = 0
  const healthCalls: Record<string, number> = {}
  return await faultServer(t, (_n, url) => {
    if (url.pathname === '/v1/agent/self') {
      const answers = spec.self ?? ['{"Config":{"Datacenter":"dc1"}}']
      const answer = answers[Math.min(selfCalls++, answers.length - 1)]!
      if (answer === 'HOLD') return HOLD
      // '!500 text': that status, as an agent with no leader (500) or a token without agent:read (403) answers.
      const status = /^!(\d{3}) (.*)$/.exec(answer)
      return status === null ? { body: answer } : { status: Number(status[1]), body: status[2]! }
    }
    if (url.pathname === '/v1/catalog/datacenters') return { body: spec.datacenters ?? '["dc1","dc2"]' }
    if (url.pathname === '/v1/catalog/nodes') return { body: spec.nodes ?? '[{"Node":"n1","Datacenter":"dc1"}]' }
    const dc = url.searchParams.get('dc') ?? ''
    const n = healthCalls[dc] = (healthCalls[dc] ?? 0) + 1
    const answer = spec.health[dc]?.[n - 1]
    return answer === undefined ? HOLD : { body: answer, index: n }
  })
}

function registry (t: Test, server: { address: string, url: string }): { d: DiscoveryRegistry, logger: ReturnType<typeof recordingLogger> } {
  const logger = recordingLogger()
  const d = new DiscoveryRegistry({ http: consulHttp(t, server), log: logger.log, defaults: { wait: '2s', backoff: { base: 5, cap: 20 } } })
  t.teardown(() => d.close())
  return { d, logger }
}

const loads = (w: ServiceWatch): number[] => w.priorities.map((p) => p.load)

t.test('the datacenter list cannot be read at first (garbage, wrong shapes): retried, warned once, then ready', async (t) => {
  const server = await agent(t, {
    self: ['!500 No cluster leader', '<html>proxy error</html>', '{"Config":{}}', '{"Config":{"Datacenter":"dc1"}}'],
    health: { '': [body('dc1', [['a', 'critical']])], dc2: [body('dc2', [['b', 'passing']])] }
  })
  const { d, logger } = registry(t, server)
  const watch = d.discover('web', { failover: { datacenters: ['dc2'] } })
  await within('ready', watch.ready)
  t.same(loads(watch), [0, 1], 'dc1 has nothing healthy: dc2 takes it all')
  t.same(watch.instances.map((i) => i.id), ['b'])
  t.equal(server.requests.filter((u) => u.pathname === '/v1/agent/self').length, 4, 'asked until it made sense')
  t.match(logger.dump(), /FST_REG_CONSUL_HTTP/)
  const warned = logger.at('warn').filter((e) => e.msg === 'discovery failover: cannot read the datacenters yet; retrying')
  t.equal(warned.length, 1, 'one warning, not one per try')
  t.match(logger.dump(), /FST_REG_DISCOVERY_BAD_RESPONSE/)
})

t.test('a token without agent:read: the local datacenter is read from the nodes it may read', async (t) => {
  const server = await agent(t, {
    self: ['!403 Permission denied'],
    nodes: '[{"Node":"n1","Datacenter":"dc1"}]',
    health: { '': [body('dc1', [['a', 'critical']])], dc2: [body('dc2', [['b', 'passing']])] }
  })
  const { d } = registry(t, server)
  const watch = d.discover('web', { failover: { datacenters: ['dc1', 'dc2'] } })
  await within('ready', watch.ready)
  t.same(watch.priorities.map((p) => p.datacenter), [undefined, 'dc2'], 'dc1 is known as the own datacenter: not listed twice')
  t.same(watch.instances.map((i) => i.id), ['b'])
})

t.test('nodes that name no datacenter are a bad answer', async (t) => {
  for (const nodes of ['{}', '[]', '[{"Node":"n1"}]']) {
    const server = await agent(t, { self: ['!403 Permission denied'], nodes, health: { '': [body('dc1', [['a', 'passing']])] } })
    const { d, logger } = registry(t, server)
    d.discover('web', { failover: { datacenters: ['dc2'] } })
    const warned = (): boolean => logger.at('warn').some((e) => e.msg === 'discovery failover: cannot read the datacenters yet; retrying')
    await within('the warning', (async () => { while (!warned()) await new Promise((resolve) => setTimeout(resolve, 10)) })())
    t.match(logger.dump(), /catalog\/nodes with a malformed body: \/0\/Datacenter: expected a string/, nodes)
    await d.close()
  }
})

t.test('a datacenter list that is not an array of names is a bad answer, retried', async (t) => {
  const server = await agent(t, { datacenters: '{"dc1":true}', health: { '': [body('dc1', [['a', 'passing']])] } })
  const { d, logger } = registry(t, server)
  const watch = d.discover('web', { failover: { nearest: 1 } })
  await within('two reads of the list', server.received(4))
  t.equal(watch.state, 'live', 'the own datacenter routes meanwhile')
  t.same(watch.instances.map((i) => i.id), ['a'])
  t.match(logger.dump(), /catalog\/datacenters with a malformed body: \/: expected an array of strings/)
  await watch.close()
  await t.rejects(watch.ready, { code: 'FST_REG_DISCOVERY_CLOSED' })
})

t.test('closed while the list is on its way: ready rejects, no datacenter is watched after the close', async (t) => {
  const server = await agent(t, { self: ['HOLD'], health: { '': [body('dc1', [['a', 'passing']])] } })
  const { d } = registry(t, server)
  const watch = d.discover('web', { failover: { datacenters: ['dc2'] } })
  await within('the list asked', server.received(3))
  await watch.close()
  await t.rejects(watch.ready, { code: 'FST_REG_DISCOVERY_CLOSED' })
  t.equal(d.watchers, 0, 'every watcher stopped')
  t.notOk(server.requests.some((u) => u.searchParams.get('dc') === 'dc2'), 'dc2 was never read')
  t.same([watch.state, watch.priorities, watch.fallback, watch.instances], ['closed', [], [], []], 'a closed watch shows nothing')
})

t.test('every datacenter short: panic across levels, announced once; over when one recovers', async (t) => {
  const server = await agent(t, {
    health: {
      '': [body('dc1', [['a1', 'critical'], ['a2', 'critical'], ['a3', 'passing']])],
      dc2: [body('dc2', [['b1', 'critical'], ['b2', 'critical']]), body('dc2', [['b1', 'passing'], ['b2', 'critical']])]
    }
  })
  const { d, logger } = registry(t, server)
  const watch = d.discover('web', { failover: { datacenters: ['dc2'] } })
  const panics: boolean[] = []
  watch.on('panic', (p) => panics.push(p))
  await within('ready', watch.ready)
  await within('panic over', new Promise<void>((resolve) => { watch.on('panic', (p) => { if (!p) resolve() }) }))
  t.same(panics, [true, false])
  // Each datacenter's own watcher logs its own panic too (with its `dc`); these are the failover watch's.
  t.same(logger.at('warn').map((e) => e.msg).filter((m) => m !== undefined && /every datacenter|a datacenter is healthy/.test(m)), [
    'discovery panic: every datacenter is below its threshold; routing to every instance not in maintenance',
    'discovery panic over: a datacenter is healthy enough; routing to healthy instances only'
  ])
  t.equal(watch.panic, false)
  // dc1 1 of 3 (0.47) and dc2 1 of 2 (0.7): normalized 0.4 / 0.6, healthy instances only.
  t.same(watch.instances.map((i) => i.id).sort(), ['a3', 'b1'])
})

t.test('locality with failover: the caller\'s zone, the rest of its datacenter, then the failover datacenter', async (t) => {
  const server = await agent(t, {
    health: {
      '': [body('dc1', [['a1', 'critical', 'z1'], ['a2', 'passing', 'z2']])],
      dc2: [body('dc2', [['b1', 'passing', 'z1']])]
    }
  })
  const { d } = registry(t, server)
  const watch = d.discover('web', { failover: { datacenters: ['dc2'] }, locality: { zone: 'z1' } })
  await within('ready', watch.ready)
  t.same(watch.priorities.map((p) => [p.datacenter, p.zone, p.load]), [[undefined, 'z1', 0], [undefined, undefined, 1], ['dc2', undefined, 0]])
  t.same(watch.instances.map((i) => i.id), ['a2'], 'zone z1 is down: the other zone of dc1, not dc2')
  t.same(watch.fallback.map((i) => i.id), ['b1'], 'dc2 is the fallback of the last try')
  t.ok(watch.lastContact! > 0)
})

t.test('a listener that throws does not stop the others', async (t) => {
  const server = await agent(t, { health: { '': [body('dc1', [['a', 'critical']])], dc2: [body('dc2', [['b', 'passing']])] } })
  const { d, logger } = registry(t, server)
  const watch = d.discover('web', { failover: { datacenters: ['dc2'] } })
  const other = d.discover('web', { failover: { datacenters: ['dc2'] } })
  const seen: string[][] = []
  watch.on('change', () => { throw new Error('consumer bug') })
  other.on('change', (instances) => seen.push(instances.map((i) => i.id)))
  await within('ready', watch.ready)
  t.same(seen.at(-1), ['b'])
  t.ok(logger.at('error').some((e) => e.msg === 'discovery listener threw'))
})

t.test('the plugin\'s list at ready(): unreadable agent → error with failFast, a warning without', async (t) => {
  const server = await agent(t, { self: ['not json'], health: {} })
  const logger = recordingLogger()
  await t.rejects(checkFailoverDatacenters(consulHttp(t, server), ['dc2'], 'discovery.failover', true, logger.log), { code: 'FST_REG_DISCOVERY_BAD_RESPONSE' })
  await checkFailoverDatacenters(consulHttp(t, server), ['dc2'], 'discovery.failover', false, logger.log)
  t.equal(logger.at('warn').filter((e) => e.msg?.startsWith('discovery failover: datacenters not checked at startup')).length, 1)
})

t.test('an empty failover list is no failover: a plain watch', async (t) => {
  const server = await agent(t, { health: { '': [body('dc1', [['a', 'passing']])] } })
  const { d } = registry(t, server)
  for (const failover of [{}, { datacenters: [] }, { nearest: 0 }]) {
    const watch = d.discover('web', { failover })
    await within('ready', watch.ready)
    t.same(watch.priorities.map((p) => p.datacenter), [undefined], JSON.stringify(failover))
    t.notOk(server.requests.some((u) => u.pathname !== '/v1/health/service/web'), 'no datacenter list read')
  }
  t.equal(d.watchers, 1, 'and the same query as a watch without the option')
})
