import { startConsul } from '@reg/testkit'
import Fastify from 'fastify'
import t from 'tap'
import { until } from './fixtures/discovery-consul.js'
import consulPlugin from '../src/index.js'
import { echoReplica as replica } from './fixtures/app.js'

// Issue #29 item 3: `await watch.ready` before listen() must not hang a deploy while Consul is down.

const settled = async (p: Promise<unknown>, ms: number): Promise<'resolved' | 'rejected' | 'pending'> =>
  await Promise.race([p.then(() => 'resolved' as const, () => 'rejected' as const), new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms))])

t.test('readyTimeout: ready rejects with a code while Consul is down; the watch keeps trying and goes live later', async (t) => {
  const agent = await startConsul({ t })
  await agent.kill()
  const caller = Fastify()
  t.teardown(() => caller.close())
  await caller.register(consulPlugin, { service: { name: 'caller' }, register: false, consul: { address: agent.address }, discovery: { backoff: { base: 50, cap: 200 } } })
  await caller.ready()

  const bounded = caller.consul.discover('echo', { readyTimeout: '300ms' })
  const unbounded = caller.consul.discover('echo')
  const started = Date.now()
  const err = await bounded.ready.then(() => undefined, (e: Error & { code?: string }) => e)
  t.equal(err?.code, 'FST_REG_DISCOVERY_NOT_READY')
  t.ok(Date.now() - started < 10_000, 'rejected in bounded time, not at the end of the outage')
  t.equal(bounded.state, 'starting', 'the watch is still trying')
  t.equal(await settled(unbounded.ready, 500), 'pending', 'negative control: without readyTimeout, ready waits for Consul')

  await agent.start()
  await replica(t, agent.address, 1)
  await unbounded.ready
  // The restarted agent's first answer may come before the replica's registration: wait for it.
  await until(bounded, (list) => list.length === 1, 'echo-1 on the bounded handle')
  t.same(bounded.instances.map((i) => i.id), ['echo-1'], 'the bounded handle sees the answers too')
})

t.test('readyTimeout is validated, can be a plugin-wide default, and belongs to the watch', async (t) => {
  const agent = await startConsul({ t })
  await replica(t, agent.address, 1)
  const caller = Fastify()
  t.teardown(() => caller.close())
  await caller.register(consulPlugin, { service: { name: 'caller' }, register: false, consul: { address: agent.address }, discovery: { readyTimeout: '5s' } })
  await caller.ready()
  const watch = caller.consul.discover('echo')
  await watch.ready
  t.equal(watch.instances.length, 1, 'an answer within the timeout resolves as usual')
  t.throws(() => caller.consul.discover('echo', { readyTimeout: 0 }), { code: 'FST_REG_DISCOVERY_INVALID_OPTION', message: /readyTimeout/ })
  t.throws(() => caller.consul.discover('echo', { readyTimeout: 'soon' }), { code: 'FST_REG_DISCOVERY_INVALID_OPTION', message: /readyTimeout/ })
  t.throws(() => caller.consul.dispatcher(watch, { readyTimeout: '1s' } as never), { code: 'FST_REG_DISCOVERY_INVALID_OPTION', message: /readyTimeout.*set by the watch/ })

  const bad = Fastify()
  t.teardown(() => bad.close())
  bad.register(consulPlugin, { service: { name: 'x' }, discovery: { readyTimeout: -1 } })
  await t.rejects(async () => { await bad.ready() }, { code: 'FST_REG_DISCOVERY_INVALID_OPTION', message: /discovery\.readyTimeout/ })
})
