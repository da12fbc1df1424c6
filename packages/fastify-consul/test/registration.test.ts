import { hostname } from 'node:os'
import { startConsul, testMeter } from '@reg/testkit'
import t from 'tap'
import { buildApp, stateBecomes } from './fixtures/app.js'
import { agentService, eventually, healthService } from './fixtures/consul-api.js'

t.test('registers on listen with the bound address and port; passing at once; leaves on close', async (t) => {
  const agent = await startConsul({ t })
  const { app, logs } = await buildApp(t, { service: { name: 'users' }, consul: { address: agent.address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  await stateBecomes(app, 'registered')

  const id = `users-${hostname()}-${port}`.replace(/[^A-Za-z0-9_.-]/g, '-')
  t.equal(app.consul.registration?.id, id, 'default id is name-hostname-port')
  const passing = await healthService(agent.url, 'users', { passing: true })
  t.equal(passing.length, 1, 'discoverable as passing right after listen: the check was registered with an initial Status')
  t.equal(passing[0]!.Service.Address, '127.0.0.1')
  t.equal(passing[0]!.Service.Port, port)
  const check = passing[0]!.Checks.find((c) => c.CheckID.startsWith(`service:${id}:`))
  t.equal(check?.Status, 'passing')

  const registered = await agentService(agent.url, id)
  t.match(registered.body, { Service: 'users', Port: port })
  t.match(app.consul.registration?.check, { type: 'http', url: `http://127.0.0.1:${port}/health`, interval: '10s', timeout: '5s', deregisterCriticalServiceAfter: '60s' })

  const info = logs.records().filter((r) => r.msg === 'registered in consul')
  t.equal(info.length, 1, 'the registration is logged once at info')
  t.equal(info[0]!.plugin, '@reg/fastify-consul', 'through the plugin child logger')

  await app.close()
  t.equal(app.consul.state, 'deregistered')
  t.equal((await agentService(agent.url, id)).status, 404, 'gone from the agent after close')
})

t.test('tags, meta, weights and enableTagOverride round-trip to Consul', async (t) => {
  const agent = await startConsul({ t })
  const { app } = await buildApp(t, {
    service: { name: 'meta-svc', id: 'meta-1', tags: ['v1', 'blue'], meta: { version: '1.2.3', 'build_id-x': 'abc' }, weights: { passing: 7, warning: 2 }, enableTagOverride: true },
    check: { type: 'http', interval: '2s', timeout: 1500 },
    consul: { address: agent.address }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  const { body } = await agentService(agent.url, 'meta-1')
  t.same(body?.Tags, ['v1', 'blue'])
  t.same(body?.Meta, { version: '1.2.3', 'build_id-x': 'abc' })
  t.same(body?.Weights, { Passing: 7, Warning: 2 }, 'Weights survive (the consul npm client drops them)')
  t.equal(body?.EnableTagOverride, true)
  t.same(app.consul.registration?.weights, { passing: 7, warning: 2 })
  t.match(app.consul.registration?.check, { interval: '2s', timeout: '1500ms' })
})

t.test('explicit address wins and is what the HTTP check probes; IPv6 is bracketed', async (t) => {
  const agent = await startConsul({ t })
  const { app } = await buildApp(t, { service: { name: 'v6', id: 'v6-1', address: '::1' }, check: { type: 'http', path: '/ready' }, register: false, consul: { address: agent.address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  await app.consul.register()
  t.equal(app.consul.registration?.address, '::1')
  t.match(app.consul.registration?.check, { type: 'http', url: `http://[::1]:${port}/ready` })
})

t.test('inject() never registers', async (t) => {
  const agent = await startConsul({ t })
  const { app } = await buildApp(t, { service: { name: 'injected', id: 'inj-1' }, consul: { address: agent.address } })
  const res = await app.inject('/health')
  t.equal(res.statusCode, 200)
  t.equal(app.consul.state, 'unregistered')
  t.equal((await agentService(agent.url, 'inj-1')).status, 404)
})

t.test('register: false leaves it to the app; register() before listen is a coded error', async (t) => {
  const agent = await startConsul({ t })
  const { app } = await buildApp(t, { service: { name: 'manual', id: 'manual-1' }, register: false, consul: { address: agent.address } })
  await app.ready()
  await t.rejects(app.consul.register(), { code: 'FST_REG_CONSUL_NOT_LISTENING' })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.equal(app.consul.state, 'unregistered', 'listen alone does not register')
  await app.consul.register()
  t.equal(app.consul.state, 'registered')
  t.equal((await agentService(agent.url, 'manual-1')).status, 200)
  await app.consul.deregister()
  await app.consul.deregister()
  t.equal(app.consul.state, 'deregistered', 'deregister() is idempotent')
  t.equal((await agentService(agent.url, 'manual-1')).status, 404)
})

t.test('a TCP check probes host:port; check: false registers no check', async (t) => {
  const agent = await startConsul({ t })
  const tcp = await buildApp(t, { service: { name: 'tcp-svc', id: 'tcp-1' }, check: { type: 'tcp', interval: '1s' }, consul: { address: agent.address } })
  await tcp.app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(tcp.app, 'registered')
  const port = (tcp.app.server.address() as { port: number }).port
  t.match(tcp.app.consul.registration?.check, { type: 'tcp', tcp: `127.0.0.1:${port}` })

  const none = await buildApp(t, { service: { name: 'bare-svc', id: 'bare-1', port: 9999 }, check: false, consul: { address: agent.address } })
  await none.app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(none.app, 'registered')
  t.equal(none.app.consul.registration?.check, undefined)
  t.equal(none.app.consul.registration?.port, 9999, 'service.port overrides the bound port (e.g. behind NAT)')
  const entries = await healthService(agent.url, 'bare-svc')
  t.same(entries[0]!.Checks.map((c) => c.CheckID), ['serfHealth'], 'only the node check')
})

t.test('re-registering the same id replaces stale checks (?replace-existing-checks)', async (t) => {
  const agent = await startConsul({ t })
  // A previous incarnation left a critical extra check behind under the same service id.
  await fetch(`${agent.url}/v1/agent/service/register`, {
    method: 'PUT',
    body: JSON.stringify({ ID: 'same-1', Name: 'same', Port: 1, Checks: [{ CheckID: 'leftover', TTL: '30s', Status: 'critical' }] })
  })
  t.equal((await healthService(agent.url, 'same', { passing: true })).length, 0)
  const { app } = await buildApp(t, { service: { name: 'same', id: 'same-1' }, consul: { address: agent.address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  const passing = await healthService(agent.url, 'same', { passing: true })
  t.equal(passing.length, 1, 'the leftover critical check is gone, so we are passing')
  t.notOk(passing[0]!.Checks.some((c) => c.CheckID === 'leftover'))
})

t.test('HTTP mode heals itself: an agent restart that loses state gets us re-registered', async (t) => {
  const agent = await startConsul({ t })
  const meter = testMeter(t)
  const { app, logs } = await buildApp(t, { service: { name: 'heal-http', id: 'heal-http-1' }, consul: { address: agent.address }, meterProvider: meter.provider })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  await agent.restart()
  await eventually(async () => (await agentService(agent.url, 'heal-http-1')).status === 200, 're-registration after restart')
  t.equal((await healthService(agent.url, 'heal-http', { passing: true })).length, 1, 'back as passing, not critical until the first probe')
  t.ok(logs.records().some((r) => r.msg === 're-registered in consul'))
  t.equal(app.consul.state, 'registered')
  t.equal(await meter.value('reg_registration_heals', { service: 'heal-http' }), 1, 'counted as a heal')
})

t.test('TTL mode reports health itself and heals after an agent restart', async (t) => {
  const agent = await startConsul({ t })
  let current: 'passing' | 'warning' | 'critical' = 'passing'
  const listeners = new Set<(s: { status: typeof current }) => void>()
  const { app } = await buildApp(t, { service: { name: 'heal-ttl', id: 'heal-ttl-1' }, check: { type: 'ttl', ttl: '2s' }, consul: { address: agent.address } }, (app) => {
    // A minimal stand-in for @reg/fastify-health's decorator (the real pairing is tested in
    // health-integration); `as never` because that package's types describe the full decorator.
    app.decorate('health', {
      path: '/health',
      status: () => ({ status: current, checks: { db: { status: current, output: current === 'passing' ? undefined : 'db down' }, cache: { status: current } } }),
      onChange: (fn: (s: { status: typeof current }) => void) => { listeners.add(fn); return () => listeners.delete(fn) }
    } as never)
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  t.match(app.consul.registration?.check, { type: 'ttl', ttl: '2s' })
  const statusOf = async (): Promise<string | undefined> => (await healthService(agent.url, 'heal-ttl'))[0]?.Checks.find((c) => c.CheckID.startsWith('service:heal-ttl-1:'))?.Status

  t.equal(await statusOf(), 'passing')
  current = 'warning'
  for (const fn of listeners) fn({ status: current })
  await eventually(async () => (await statusOf()) === 'warning', 'warning pushed on change')
  const output = (await healthService(agent.url, 'heal-ttl'))[0]!.Checks.find((c) => c.CheckID.startsWith('service:heal-ttl-1:'))!.Output
  t.equal(output, 'warning: db warning (db down); cache warning', 'the output names the failing checks')

  current = 'passing'
  for (const fn of listeners) fn({ status: current })
  await eventually(async () => (await statusOf()) === 'passing', 'passing again')

  await agent.restart()
  await eventually(async () => (await statusOf()) === 'passing', 're-registered after restart, with its TTL check passing')
  // Well past the 2 s TTL: the beat keeps it passing.
  await new Promise((resolve) => setTimeout(resolve, 2500))
  t.equal(await statusOf(), 'passing', 'the TTL beat keeps the check alive')
})

t.test('TTL mode without self-heal still notices a lost check through the TTL update', async (t) => {
  const agent = await startConsul({ t })
  const { app, logs } = await buildApp(t, { service: { name: 'ttl-only', id: 'ttl-only-1' }, check: { type: 'ttl', ttl: '1s' }, selfHeal: false, consul: { address: agent.address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  await agent.restart()
  await eventually(async () => (await agentService(agent.url, 'ttl-only-1')).status === 200, 're-registration triggered by the TTL update')
  t.ok(logs.records().some((r) => r.msg === 'consul agent lost our TTL check; registering again'))
})
