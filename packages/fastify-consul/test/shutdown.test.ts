import { startConsul } from '@reg/testkit'
import t from 'tap'
import { resolveConnection } from '../src/consul/connection.js'
import { ConsulHttp } from '../src/consul/http.js'
import { leftHealthyView } from '../src/registration/healthy-view.js'
import { buildApp, stateBecomes } from './fixtures/app.js'
import { healthService } from './fixtures/consul-api.js'

t.test('shutdown(): drain + deregister → gone from ?passing → drainDelay → close, serving until close', async (t) => {
  const agent = await startConsul({ t })
  let drained = false
  const { app, logs } = await buildApp(t, { service: { name: 'exit', id: 'exit-1' }, drainDelay: 300, consul: { address: agent.address } }, (app) => {
    app.decorate('health', {
      path: '/health',
      status: () => ({ status: drained ? 'critical' as const : 'passing' as const, checks: {} }),
      onChange: () => () => {},
      drain: () => { drained = true }
    } as never)
    app.get('/work', async () => ({ ok: true }))
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  await stateBecomes(app, 'registered')

  const done = app.consul.shutdown()
  t.equal(app.consul.shutdown(), done, 'a second call joins the first')
  // While we wait for callers to let go, requests are still served normally (no 503 from close()).
  const deadline = Date.now() + 5000
  while (app.consul.state !== 'deregistered' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
  const during = await fetch(`${base}/work`)
  t.equal(during.status, 200, 'still serving during the drain')
  await during.arrayBuffer()
  await done

  t.ok(drained, 'health was drained first')
  t.equal((await healthService(agent.url, 'exit', { passing: true })).length, 0)
  await t.rejects(fetch(`${base}/work`), 'closed at the end')
  const steps = logs.records().filter((r) => typeof r.step === 'string')
  t.same(steps.map((r) => r.step), ['stop advertising', 'left the healthy view', 'drain delay', 'close'], 'the order peers agree on')
  t.ok(steps.every((r) => typeof r.durationMs === 'number'), 'each step logged with its duration')
})

t.test('shutdown() without a registration or health plugin just closes', async (t) => {
  const agent = await startConsul({ t })
  const { app, logs } = await buildApp(t, { service: { name: 'never' }, register: false, consul: { address: agent.address } })
  await app.ready()
  await app.consul.shutdown()
  t.same(logs.records().filter((r) => typeof r.step === 'string').map((r) => r.step), ['stop advertising', 'close'])
})

t.test('leftHealthyView: true once gone, false when it cannot be confirmed', async (t) => {
  const agent = await startConsul({ t })
  const http = new ConsulHttp({ connection: resolveConnection({ address: agent.address }, {}) })
  t.teardown(() => http.close())
  await fetch(`${agent.url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ ID: 'v-1', Name: 'v', Check: { TTL: '30s', Status: 'passing' } }) })
  // A change to the view (the check failing) wakes the blocking query.
  setTimeout(() => { fetch(`${agent.url}/v1/agent/check/fail/service:v-1`, { method: 'PUT' }).catch(() => {}) }, 200)
  t.equal(await leftHealthyView(http, 'v', 'v-1', 10_000), true, 'a failing check also leaves ?passing')
  await fetch(`${agent.url}/v1/agent/check/pass/service:v-1`, { method: 'PUT' })
  t.equal(await leftHealthyView(http, 'v', 'v-1', 1000), false, 'still listed at the deadline')
  await agent.kill()
  t.equal(await leftHealthyView(http, 'v', 'v-1', 1000), false, 'unreachable: cannot confirm')
})

t.test('leftHealthyView: a non-200 or malformed answer cannot confirm', async (t) => {
  const { createServer } = await import('node:http')
  let reply = { status: 403, body: '' }
  const server = createServer((_req, res) => { res.writeHead(reply.status); res.end(reply.body) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const http = new ConsulHttp({ connection: resolveConnection({ address: `127.0.0.1:${(server.address() as { port: number }).port}` }, {}) })
  t.teardown(() => http.close())
  t.equal(await leftHealthyView(http, 'v', 'v-1', 1000), false)
  reply = { status: 200, body: '{not json' }
  t.equal(await leftHealthyView(http, 'v', 'v-1', 1000), false)
})

t.test('shutdown() when nothing was registered says so and skips the waits', async (t) => {
  const agent = await startConsul({ t })
  const { app, logs } = await buildApp(t, { service: { name: 'never', id: 'never-1' }, register: false, consul: { address: agent.address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await app.consul.shutdown()
  t.ok(logs.records().some((r) => r.msg === 'shutdown: nothing was registered; no healthy view to leave'))
  t.same(logs.records().filter((r) => typeof r.step === 'string').map((r) => r.step), ['stop advertising', 'close'])
})

t.test('shutdown() with drainDelay: 0 skips only the delay', async (t) => {
  const agent = await startConsul({ t })
  const { app, logs } = await buildApp(t, { service: { name: 'quick', id: 'quick-1' }, drainDelay: 0, consul: { address: agent.address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  await app.consul.shutdown()
  t.same(logs.records().filter((r) => typeof r.step === 'string').map((r) => r.step), ['stop advertising', 'left the healthy view', 'close'])
})

t.test('shutdown() says when it could not confirm leaving the healthy view', async (t) => {
  // A loopback stand-in: real Consul drops a deregistered instance from ?passing at once, so "still
  // listed after deregistering" (a second agent that still has us, a lagging server) needs a stand-in.
  const { createServer } = await import('node:http')
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/v1/health/service/')) {
      const blocking = req.url.includes('index=')
      setTimeout(() => {
        res.writeHead(200, { 'x-consul-index': '5', 'content-type': 'application/json' })
        res.end(JSON.stringify([{ Service: { ID: 'listed-1' } }]))
      }, blocking ? 200 : 0)
      return
    }
    res.writeHead(200)
    res.end('true')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const address = `127.0.0.1:${(server.address() as { port: number }).port}`
  const { app, logs } = await buildApp(t, { service: { name: 'listed', id: 'listed-1' }, selfHeal: false, deregisterTimeout: 300, drainDelay: 0, consul: { address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  await app.consul.shutdown()
  t.ok(logs.records().some((r) => r.level === 40 && String(r.msg).startsWith('shutdown: could not confirm we left the healthy view')))
})
