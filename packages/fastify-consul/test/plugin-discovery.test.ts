import { startConsul } from '@reg/testkit'
import Fastify from 'fastify'
import t from 'tap'
import { request } from 'undici'
import consulPlugin from '../src/index.js'
import { echoReplica as replica } from './fixtures/app.js'

t.test('fastify.consul.discover() and dispatcher(): the caller side through the decorator', async (t) => {
  const agent = await startConsul({ t })
  const replicas = await Promise.all([1, 2, 3].map((n) => replica(t, agent.address, n)))
  const caller = Fastify()
  t.teardown(() => caller.close())
  await caller.register(consulPlugin, { service: { name: 'caller' }, register: false, consul: { address: agent.address }, discovery: { wait: '2s' } })
  await caller.ready()

  const watch = caller.consul.discover('echo')
  await watch.ready
  t.same(watch.instances.map((i) => i.id).sort(), ['echo-1', 'echo-2', 'echo-3'])
  t.ok(watch.lastContact !== undefined && watch.lastContact <= Date.now(), 'when Consul last answered')
  t.same(watch.all.map((i) => i.id).sort(), ['echo-1', 'echo-2', 'echo-3'])
  t.equal(watch.panic, false)
  const picked = new Set(Array.from({ length: 6 }, () => watch.pick().id))
  t.equal(picked.size, 3, 'round-robin visits every instance')

  const dispatcher = caller.consul.dispatcher('echo')
  const seen = new Set<string>()
  for (let i = 0; i < 6; i++) {
    const res = await request('http://echo/who', { dispatcher })
    seen.add((await res.body.json() as { id: string }).id)
  }
  t.same([...seen].sort(), ['echo-1', 'echo-2', 'echo-3'], 'requests spread across the replicas')

  // A caller that already watches hands the watch to dispatcher(): no second query, the same view.
  const shared = caller.consul.dispatcher(watch, { retries: 0 })
  t.same(shared.instances.map((i) => i.id).sort(), ['echo-1', 'echo-2', 'echo-3'], 'fed by the watch at once')
  t.equal((await (await request('http://echo/who', { dispatcher: shared })).body.json() as { id: string }).id.startsWith('echo-'), true)
  t.throws(() => caller.consul.dispatcher(watch, { tag: 'x' } as never), { code: 'FST_REG_DISCOVERY_INVALID_OPTION', message: /tag.*set by the watch/ }, 'the query belongs to the watch')
  await shared.close()
  t.equal(watch.state, 'live', 'closing the dispatcher does not close the watch it was given')

  const changed = new Promise<readonly unknown[]>((resolve) => watch.on('change', resolve))
  await replicas[0]!.close()
  t.equal((await changed).length, 2, 'a replica that leaves is dropped by the change event')
  const other = caller.consul.discover('echo', { tag: 'never-closed-by-the-test' })
  await watch.close()
  t.equal(watch.state, 'closed')
  t.same([watch.all, watch.instances, watch.panic], [[], [], false], 'a closed handle shows nothing')
  t.throws(() => caller.consul.dispatcher(watch), { code: 'FST_REG_DISCOVERY_INVALID_OPTION', message: /option watch/ }, 'a closed watch cannot feed a dispatcher')
  await caller.close()
  t.equal(other.state, 'closed', 'onClose stops the watches nobody closed')
})

t.test('invalid discovery defaults fail ready() with a discovery code', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(consulPlugin, { service: { name: 'x' }, discovery: { balancer: 'fastest' as never } })
  await t.rejects(async () => { await app.ready() }, { code: 'FST_REG_DISCOVERY_INVALID_OPTION', message: /discovery\.balancer: expected one of "round-robin"/ })
})

t.test('plugin-level discovery defaults sit under each call; a call\'s undefined keeps them', async (t) => {
  const agent = await startConsul({ t })
  const caller = Fastify()
  t.teardown(() => caller.close())
  await caller.register(consulPlugin, { service: { name: 'caller' }, register: false, consul: { address: agent.address }, discovery: { wait: '2s', tag: 'blue' } })
  await caller.ready()
  await replica(t, agent.address, 1)
  const watch = caller.consul.discover('echo', { tag: undefined })
  await watch.ready
  t.same(watch.instances, [], 'the plugin\'s tag filter still applies: echo-1 has no tag blue')
})
