import { EventEmitter } from 'node:events'
import { startConsul, testMeter } from '@reg/testkit'
import Fastify from 'fastify'
import t from 'tap'
import { request } from 'undici'
import consulPlugin from '../src/index.js'
import type { ServiceDispatcher } from '../src/discovery/dispatch/service-dispatcher.js'
import { InstanceSet } from '../src/discovery/watch/instance-set.js'
import type { Instance, InstanceStatus } from '../src/discovery/watch/instance.js'
import { consulMetrics, type ConsulMetricsSources } from '../src/metrics.js'
import type { RegistrationState } from '../src/registration/registrar.js'
import { echoReplica as replica, stateBecomes } from './fixtures/app.js'

function instance (id: string, status: InstanceStatus): Instance {
  return Object.freeze({ id, service: 'users', node: 'n', datacenter: 'dc1', nodeMeta: {}, address: '127.0.0.1', port: 1, host: '127.0.0.1', tags: [], meta: {}, weight: status === 'critical' ? 0 : 1, status, maintenance: false })
}

interface FakeWatch { query: { service: string }, all: InstanceSet, panic: boolean, outageSince: number | undefined, invalid: number }

t.test('gauges read the registration and the watchers at collection time', async (t) => {
  const m = testMeter(t)
  const reg: { id: string | undefined, state: RegistrationState } = { id: undefined, state: 'unregistered' }
  const users: FakeWatch = { query: { service: 'users' }, all: InstanceSet.from([instance('a', 'passing'), instance('b', 'passing'), instance('c', 'critical')]), panic: false, outageSince: undefined, invalid: 0 }
  // A second query on the same service (another tag): the first watcher's view is the one reported.
  const usersTagged: FakeWatch = { ...users, all: InstanceSet.EMPTY }
  const healed = new EventEmitter()
  let now = 1000
  let reads = 0
  const sources: ConsulMetricsSources = {
    registration: () => ({ service: 'me', ...reg }),
    watchers: () => { reads++; return [users, usersTagged] as never },
    onHealed: (fn) => { healed.on('healed', fn); return () => { healed.off('healed', fn) } },
    now: () => now
  }
  const metrics = consulMetrics(m.provider, sources)

  t.equal(await m.value('reg_registration_state'), undefined, 'no series before the service id is known')
  reg.id = 'me-1'
  reg.state = 'registered'
  t.equal(await m.value('reg_registration_state', { service: 'me', service_id: 'me-1', state: 'registered' }), 1)
  t.equal(await m.value('reg_registration_state', { service_id: 'me-1' }), 1, 'every other state reads 0')
  t.equal((await m.collect()).filter((p) => p.name === 'reg_registration_state').length, 6, 'one series per state')
  reg.state = 'failed'
  t.equal(await m.value('reg_registration_state', { state: 'registered' }), 0, 'follows the registrar')
  t.equal(await m.value('reg_registration_state', { state: 'failed' }), 1)

  t.equal(await m.value('reg_discovery_instances', { service: 'users', status: 'passing' }), 2)
  t.equal(await m.value('reg_discovery_instances', { service: 'users', status: 'critical' }), 1)
  t.equal(await m.value('reg_discovery_instances', { service: 'users', status: 'warning' }), 0, 'a status with no instance reads 0, not absent')
  t.equal(await m.value('reg_discovery_stale_seconds', { service: 'users' }), 0, '0 while live')
  t.equal(await m.value('reg_discovery_panic', { service: 'users' }), 0)
  t.equal(await m.value('reg_discovery_invalid_instances', { service: 'users' }), 0)
  users.invalid = 2
  t.equal(await m.value('reg_discovery_invalid_instances', { service: 'users' }), 2, 'entries left out as unusable')

  users.outageSince = 1000
  users.panic = true
  now = 4500
  t.equal(await m.value('reg_discovery_stale_seconds', { service: 'users' }), 3.5, 'seconds since the outage began')
  t.equal(await m.value('reg_discovery_panic', { service: 'users' }), 1)
  now = 500
  t.equal(await m.value('reg_discovery_stale_seconds', { service: 'users' }), 0, 'a clock step back reads 0, not negative')
  users.outageSince = undefined
  t.equal(await m.value('reg_discovery_stale_seconds', { service: 'users' }), 0, 'live again')

  t.equal(await m.value('reg_registration_heals_total'), undefined)
  t.equal(await m.value('reg_registration_heals'), undefined)
  healed.emit('healed')
  healed.emit('healed')
  t.equal(await m.value('reg_registration_heals', { service: 'me' }), 2)

  metrics.close()
  t.equal(healed.listenerCount('healed'), 0, 'close() unsubscribes')
  const before = reads
  await m.collect()
  t.equal(reads, before, 'and stops reading the sources')
})

t.test('dispatcher events become request, retry, ejection and latency metrics', async (t) => {
  const m = testMeter(t)
  const metrics = consulMetrics(m.provider, { registration: () => ({ service: 'me', id: undefined, state: 'unregistered' }), watchers: () => [], onHealed: () => () => {} })
  t.teardown(() => metrics.close())
  const events = new EventEmitter()
  metrics.observe({ service: 'users', events } as unknown as ServiceDispatcher)
  const a = instance('a', 'passing')
  events.emit('request', a, 'success', 20, 0)
  events.emit('request', a, 'success', 40, 2)
  events.emit('request', undefined, 'no_instance', 0, 0)
  events.emit('eject', a, { reason: 'connect', ms: 30_000 })
  t.equal(await m.value('reg_dispatcher_requests', { service: 'users', outcome: 'success' }), 2)
  t.equal(await m.value('reg_dispatcher_requests', { service: 'users', outcome: 'no_instance' }), 1)
  t.equal(await m.value('reg_dispatcher_retries', { service: 'users' }), 2)
  t.equal(await m.value('reg_dispatcher_ejections', { service: 'users' }), 1)
  const histogram = (await m.collect()).find((p) => p.name === 'reg_dispatcher_request_duration_seconds')
  t.equal(histogram?.count, 3)
  t.equal(Math.round((histogram?.value ?? 0) * 1000), 60, 'recorded in seconds')
  t.same(histogram?.attributes, { service: 'users' }, 'no instance address or outcome in the latency labels')

  // #30: probe outcomes, and how long each instance stayed out.
  events.emit('probe', a, { passed: false, ms: 2000 })
  events.emit('readmit', a, 'probe', 3000)
  events.emit('readmit', a, 'success', 1500)
  t.equal(await m.value('reg_dispatcher_probes', { service: 'users', outcome: 'failed' }), 1)
  t.equal(await m.value('reg_dispatcher_probes', { service: 'users', outcome: 'passed' }), 1, 'a readmission by another request is not a probe')
  const out = (await m.collect()).find((p) => p.name === 'reg_dispatcher_ejected_seconds')
  t.equal(out?.count, 2)
  t.equal(out?.value, 4.5, 'seconds out, every readmission')
})

t.test('the plugin reports through `meterProvider`: registration, discovery and a real dispatcher', async (t) => {
  const agent = await startConsul({ t })
  const m = testMeter(t)
  const replicas = await Promise.all([1, 2].map((n) => replica(t, agent.address, n)))
  const caller = Fastify()
  t.teardown(() => caller.close())
  await caller.register(consulPlugin, { service: { name: 'caller', id: 'caller-1' }, consul: { address: agent.address }, discovery: { wait: '2s' }, meterProvider: m.provider })
  caller.get('/health', async () => ({ status: 'passing' }))
  await caller.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(caller, 'registered')
  t.equal(await m.value('reg_registration_state', { service: 'caller', service_id: 'caller-1', state: 'registered' }), 1)

  const dispatcher = caller.consul.dispatcher('echo', { retries: 1 })
  await dispatcher.ready
  t.equal(await m.value('reg_discovery_instances', { service: 'echo', status: 'passing' }), 2, 'what Consul says')
  for (let i = 0; i < 4; i++) await (await request('http://echo/who', { dispatcher })).body.dump()
  t.equal(await m.value('reg_dispatcher_requests', { service: 'echo', outcome: 'success' }), 4)
  t.equal(await m.value('reg_dispatcher_retries'), undefined, 'no retry yet')

  // A replica that stops listening but is still in Consul: refused, ejected, retried on the other.
  await replicas[0]!.server.close()
  replicas[0]!.server.closeAllConnections()
  for (let i = 0; i < 4; i++) await (await request('http://echo/who', { dispatcher })).body.dump()
  t.equal(await m.value('reg_dispatcher_requests', { service: 'echo', outcome: 'success' }), 8, 'every request still succeeded')
  t.ok((await m.value('reg_dispatcher_ejections', { service: 'echo' }))! >= 1, 'the refusing replica was ejected')
  t.ok((await m.value('reg_dispatcher_retries', { service: 'echo' }))! >= 1, 'and its request retried')

  // The SDK keeps a gauge's last value once its callback is gone, so what shows is that it stops moving.
  await caller.close()
  t.equal(await m.value('reg_registration_state', { service_id: 'caller-1', state: 'registered' }), 1, 'the last value read before close')
})

t.test('meterProvider must be a MeterProvider', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(consulPlugin, { service: { name: 'x' }, meterProvider: {} as never })
  await t.rejects(async () => { await app.ready() }, { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /meterProvider/ })
})

t.test('reg_discovery_stale_seconds counts from the first failed read, not from the last answer of an idle blocking query', async (t) => {
  const agent = await startConsul({ t })
  const m = testMeter(t)
  await replica(t, agent.address, 1)
  const caller = Fastify()
  t.teardown(() => caller.close())
  // The default 5 min wait: the query sits idle, and Consul's last answer grows old while all is well.
  await caller.register(consulPlugin, { service: { name: 'caller' }, register: false, consul: { address: agent.address }, meterProvider: m.provider })
  await caller.ready()
  const watch = caller.consul.discover('echo')
  await watch.ready
  await new Promise((resolve) => setTimeout(resolve, 4000))
  t.equal(await m.value('reg_discovery_stale_seconds', { service: 'echo' }), 0, '0 while live, however old the last answer')
  const idle = (Date.now() - watch.lastContact!) / 1000
  await agent.kill()
  const deadline = Date.now() + 10_000
  while (watch.state !== 'stale' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(watch.state, 'stale')
  const first = (await m.value('reg_discovery_stale_seconds', { service: 'echo' }))!
  // The old measure read at least `idle` (>= 4 s) here; the outage is only milliseconds old.
  t.ok(first < idle - 1, `just after the outage began: ${first} s, not the ${idle.toFixed(1)} s since the last answer`)
  await new Promise((resolve) => setTimeout(resolve, 2000))
  t.ok((await m.value('reg_discovery_stale_seconds', { service: 'echo' }))! >= 1.5, 'and it counts the outage as it goes on')
})
