import { startConsul } from '@reg/testkit'
import t from 'tap'
import { resolveConnection } from '../src/consul/connection.js'
import { ConsulHttp } from '../src/consul/http.js'

const MASTER = '0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f'

t.test('send() returns any status with the index; ok() turns non-2xx into coded errors', async (t) => {
  const agent = await startConsul({ t, acl: { masterToken: MASTER } })
  const anon = new ConsulHttp({ connection: resolveConnection({ address: agent.address }, {}) })
  const authed = new ConsulHttp({ connection: resolveConnection({ address: agent.address, token: MASTER }, {}) })
  t.teardown(() => Promise.all([anon.close(), authed.close()]))

  const res = await authed.send({ path: '/v1/catalog/services', query: { stale: true, cached: false, dc: undefined } })
  t.equal(res.status, 200)
  t.type(res.index, 'number', 'X-Consul-Index parsed')
  t.equal(res.knownLeader, true)

  await t.rejects(anon.ok({ method: 'PUT', path: '/v1/agent/service/register', body: { Name: 'x' } }), { code: 'FST_REG_CONSUL_ACL_DENIED' })
  await t.rejects(authed.ok({ method: 'PUT', path: '/v1/agent/service/register', body: { Name: 'x', Bogus: 1 } }), { code: 'FST_REG_CONSUL_HTTP', statusCode: 502 })
  const plain = await authed.send({ path: '/v1/status/leader' })
  t.equal(plain.index, undefined, 'no index header, no index')
  t.equal(plain.knownLeader, undefined)
})

t.test('an aborted request rejects with the abort, not as "unreachable"; close() is idempotent', async (t) => {
  const agent = await startConsul({ t })
  const http = new ConsulHttp({ connection: resolveConnection({ address: agent.address }, {}) })
  const ac = new AbortController()
  const pending = http.send({ path: '/v1/catalog/services', query: { index: 999999, wait: '5s' }, signal: ac.signal })
  ac.abort()
  const err = await pending.then(() => undefined, (e: Error & { code?: string }) => e)
  t.ok(err, 'rejected')
  t.not(err?.code, 'FST_REG_CONSUL_UNREACHABLE')
  await http.close()
  await http.close()
})

t.test('a dispatcher passed in is used and left open', async (t) => {
  const agent = await startConsul({ t })
  const { Agent } = await import('undici')
  const dispatcher = new Agent()
  t.teardown(() => dispatcher.close())
  const http = new ConsulHttp({ connection: resolveConnection({ address: agent.address }, {}), dispatcher })
  t.equal((await http.send({ path: '/v1/status/leader' })).status, 200)
  await http.close()
  t.equal(dispatcher.closed, false, 'not ours to close')
})

t.test('basic auth goes in Authorization only; namespace and partition in every query', async (t) => {
  const { createServer } = await import('node:http')
  const seen: Array<{ url: string, authorization: string | undefined }> = []
  const server = createServer((req, res) => {
    seen.push({ url: req.url!, authorization: req.headers.authorization })
    res.end('[]')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const address = `127.0.0.1:${(server.address() as { port: number }).port}`
  const http = new ConsulHttp({ connection: resolveConnection({ address }, { CONSUL_HTTP_AUTH: 'ops:s3cret', CONSUL_NAMESPACE: 'team-a', CONSUL_PARTITION: 'part-1' }) })
  t.teardown(() => http.close())
  await http.send({ path: '/v1/health/service/web', query: { passing: true } })
  t.same(seen, [{ url: '/v1/health/service/web?ns=team-a&partition=part-1&passing', authorization: `Basic ${Buffer.from('ops:s3cret').toString('base64')}` }])
  t.notMatch(http.address, /s3cret/, 'the password is in no address')
})

t.test('plain HTTP against a TLS port and an unknown TLS failure are coded', async (t) => {
  const { createServer } = await import('node:http')
  const server = createServer((_req, res) => {
    res.statusCode = 400
    res.end('Client sent an HTTP request to an HTTPS server.\n')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const address = `127.0.0.1:${(server.address() as { port: number }).port}`
  const http = new ConsulHttp({ connection: resolveConnection({ address }, {}) })
  t.teardown(() => http.close())
  await t.rejects(http.send({ path: '/v1/status/leader' }), { code: 'FST_REG_CONSUL_TLS_REQUIRED' })
})

t.test('a TLS peer that hangs up without an alert is an outage, not a TLS failure', async (t) => {
  const { readFileSync } = await import('node:fs')
  const { createServer } = await import('node:net')
  const { TLSSocket } = await import('node:tls')
  const { makeTlsFixture } = await import('@reg/testkit')
  const tls = await makeTlsFixture({ t })
  const sockets = new Set<import('node:net').Socket>()
  let connections = 0
  const server = createServer((raw) => {
    sockets.add(raw)
    const odd = connections++ % 2 === 1
    const s = new TLSSocket(raw, { isServer: true, cert: readFileSync(tls.server.cert), key: readFileSync(tls.server.key) })
    // After the handshake, at the request: a TCP reset, or a plain close; neither carries a TLS alert.
    s.once('data', () => odd ? raw.resetAndDestroy() : raw.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(resolve)
  }))
  const address = `https://127.0.0.1:${(server.address() as { port: number }).port}`
  const http = new ConsulHttp({ connection: resolveConnection({ address, caFile: tls.ca.cert, tlsServerName: tls.serverName }, {}) })
  t.teardown(() => http.close())
  for (let i = 0; i < 2; i++) await t.rejects(http.send({ path: '/v1/status/leader' }), { code: 'FST_REG_CONSUL_UNREACHABLE' })
})

t.test('the `consul` npm client gets basic auth and the partition too', async (t) => {
  const { createServer } = await import('node:http')
  const seen: Array<{ url: string, authorization: string | undefined }> = []
  const server = createServer((req, res) => {
    seen.push({ url: req.url!, authorization: req.headers.authorization })
    res.setHeader('content-type', 'application/json')
    res.end('"127.0.0.1:8300"')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const { buildApp } = await import('./fixtures/app.js')
  const { app } = await buildApp(t, { service: { name: 'x' }, register: false, consul: { address: `127.0.0.1:${(server.address() as { port: number }).port}`, auth: 'ops:pw', partition: 'p1' } })
  await app.ready()
  await app.consul.client.status.leader()
  t.same(seen, [{ url: '/v1/status/leader?partition=p1', authorization: `Basic ${Buffer.from('ops:pw').toString('base64')}` }])
})
