import healthPlugin from '@reg/fastify-health'
import { startConsul } from '@reg/testkit'
import Fastify from 'fastify'
import t from 'tap'
import consulPlugin from '../src/index.js'
import { stateBecomes } from './fixtures/app.js'
import { eventually, healthService } from './fixtures/consul-api.js'

t.test('with @reg/fastify-health: the check probes its path, starts with its status, follows it', async (t) => {
  const agent = await startConsul({ t })
  let db: 'up' | 'slow' | 'down' = 'up'
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(healthPlugin, { path: '/ready', underPressure: { maxEventLoopDelay: 0 } })
  app.health.addCheck('db', () => {
    if (db === 'down') throw new Error('connection refused')
  }, { interval: 200 })
  app.health.addCheck('cache', () => {
    if (db === 'slow') throw new Error('cache miss storm')
  }, { interval: 200, critical: false })
  await app.register(consulPlugin, { service: { name: 'paired', id: 'paired-1' }, check: { type: 'http', interval: '1s' }, consul: { address: agent.address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  const port = (app.server.address() as { port: number }).port
  t.match(app.consul.registration?.check, { type: 'http', url: `http://127.0.0.1:${port}/ready` }, 'the health plugin\'s path')

  const checkStatus = async (): Promise<string | undefined> => (await healthService(agent.url, 'paired'))[0]?.Checks.find((c) => c.CheckID.startsWith('service:paired-1:'))?.Status
  t.equal(await checkStatus(), 'passing')
  db = 'slow'
  await eventually(async () => (await checkStatus()) === 'warning', 'Consul reads 429 as warning')
  db = 'down'
  await eventually(async () => (await checkStatus()) === 'critical', 'and 503 as critical')
  t.equal((await healthService(agent.url, 'paired', { passing: true })).length, 0, 'out of ?passing')
  db = 'up'
  await eventually(async () => (await checkStatus()) === 'passing', 'back to passing')
})

t.test('an instance that starts unhealthy registers as critical, not passing', async (t) => {
  const agent = await startConsul({ t })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(healthPlugin, { underPressure: { maxEventLoopDelay: 0 }, checks: { db: () => { throw new Error('no db') } } })
  await app.register(consulPlugin, { service: { name: 'sick', id: 'sick-1' }, consul: { address: agent.address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  const entry = (await healthService(agent.url, 'sick'))[0]
  t.equal(entry?.Checks.find((c) => c.CheckID.startsWith('service:sick-1:'))?.Status, 'critical', 'the first health evaluation decides the initial Status')
})

t.test('TTL mode pushes the health plugin\'s changes; shutdown() drains it first', async (t) => {
  const agent = await startConsul({ t })
  let ok = true
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(healthPlugin, { underPressure: { maxEventLoopDelay: 0 } })
  app.health.addCheck('db', () => { if (!ok) throw new Error('db down') }, { interval: 100 })
  await app.register(consulPlugin, { service: { name: 'ttl-paired', id: 'ttl-paired-1' }, check: { type: 'ttl', ttl: '30s' }, drainDelay: 0, consul: { address: agent.address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  const check = async (): Promise<{ Status: string, Output: string } | undefined> => (await healthService(agent.url, 'ttl-paired'))[0]?.Checks.find((c) => c.CheckID.startsWith('service:ttl-paired-1:'))
  ok = false
  // The TTL is 30 s: only the onChange push can make this flip quickly.
  const failed = await eventually(async () => { const c = await check(); return c?.Status === 'critical' ? c : undefined }, 'critical pushed on change')
  t.match(failed.Output, /db critical \(db down\)/)
  ok = true
  await eventually(async () => (await check())?.Status === 'passing', 'passing pushed on change')

  await app.consul.shutdown()
  t.equal(app.health.status().draining, true, 'drained')
  t.equal((await healthService(agent.url, 'ttl-paired')).length, 0, 'deregistered')
})
