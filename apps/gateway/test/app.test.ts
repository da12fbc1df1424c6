import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePorts, startConsul } from '@reg/testkit'
import Fastify from 'fastify'
import t from 'tap'
import gateway from '../src/app.js'
import { buildGateway, healthBecomes, instancesBecome, startReplica, type ErrorBody } from './fixtures/app.js'
import { fakeUpstream, registerInstance } from './fixtures/consul.js'

// The app plugin under inject(), against one real Consul agent for the whole file. Each test uses its
// own upstream name, so the tests cannot see each other's instances.
const agent = await startConsul({ t })
const consul = { address: agent.address }

interface Echo {
  method: string
  url: string
  headers: Record<string, string>
  body: string
}

t.test('no upstream: 503 FST_REG_DISCOVERY_NO_INSTANCE and /health warns; an instance appearing turns both around', async (t) => {
  const app = await buildGateway(t, { upstream: 'users-a', consul })
  t.equal(app.gateway.upstream, 'users-a')
  t.same(app.gateway.watch.instances, [], 'Consul answered: nothing registered')

  for (const request of [
    { method: 'GET' as const, url: '/users' },
    { method: 'GET' as const, url: '/users/42?x=1' },
    { method: 'POST' as const, url: '/users', payload: { name: 'Ada', email: 'ada@example.com' } }
  ]) {
    const res = await app.inject(request)
    t.equal(res.statusCode, 503, `${request.method} ${request.url}`)
    t.match(res.json<ErrorBody>(), { statusCode: 503, code: 'FST_REG_DISCOVERY_NO_INSTANCE', error: 'Service Unavailable' })
    t.equal(res.headers['x-instance-id'], undefined, 'no instance answered')
  }
  const health = await app.inject('/health')
  t.equal(health.statusCode, 429, 'a warning, not critical: the gateway itself is fine')
  t.match(health.json(), { status: 'warning', checks: { upstream: { status: 'warning', critical: false } } })
  t.equal((await app.inject('/health/live')).statusCode, 200)

  const dir = await mkdtemp(join(tmpdir(), 'gateway-app-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const passing = healthBecomes(app, 'passing')
  await startReplica(t, { consulAddress: agent.address, serviceName: 'users-a', serviceId: 'users-a-1', dbPath: join(dir, 'users.db') })
  await passing
  const healthy = await app.inject('/health')
  t.equal(healthy.statusCode, 200)
  t.match(healthy.json(), { status: 'passing', checks: { upstream: { status: 'passing', output: /1 healthy instance/ } } })
  const res = await app.inject('/users')
  t.equal(res.statusCode, 200)
  t.same(res.json(), [])
  t.equal(res.headers['x-instance-id'], 'users-a-1', "the upstream's x-instance-id is passed on")
})

t.test('requests pass through unchanged, with forwarding headers; hop-by-hop response headers stop here', async (t) => {
  await fakeUpstream(t, agent.url, 'echo', (req, res) => {
    let body = ''
    req.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => {
      res.writeHead(200, {
        'content-type': 'application/json',
        'x-instance-id': 'echo-1',
        // The connection header names x-hop as hop-by-hop: it must not reach the client either.
        connection: 'keep-alive, x-hop',
        'keep-alive': 'timeout=72',
        'x-hop': 'for the gateway only'
      })
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }))
    })
  })
  const app = await buildGateway(t, { upstream: 'echo', consul })

  const get = await app.inject({ url: '/users?b=2&a=1', headers: { host: 'api.example.com', 'x-request-id': 'r-1' } })
  t.equal(get.statusCode, 200)
  t.equal(get.headers['x-instance-id'], 'echo-1')
  t.equal(get.headers['keep-alive'], undefined, "the upstream's keep-alive is about its socket to us")
  t.equal(get.headers['x-hop'], undefined, 'headers named in Connection are dropped')
  t.not(get.headers.connection, 'keep-alive, x-hop')
  const seen = get.json<Echo>()
  t.equal(seen.method, 'GET')
  t.equal(seen.url, '/users?b=2&a=1', 'path and query as the client sent them')
  t.match(seen.headers, {
    'x-request-id': 'r-1',
    'x-forwarded-for': '127.0.0.1',
    'x-forwarded-host': 'api.example.com',
    'x-forwarded-proto': 'http'
  })

  const chained = (await app.inject({ url: '/users/7/roles', headers: { 'x-forwarded-for': '203.0.113.9' } })).json<Echo>()
  t.equal(chained.url, '/users/7/roles', 'nested paths are proxied')
  t.equal(chained.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1', 'the client is appended to the chain')

  // Not reformatted, not re-encoded: JSON with odd spacing and a type the gateway has no parser for.
  const json = '{ "name":  "Ada",\n"email": "ada@example.com" }'
  const post = (await app.inject({ method: 'POST', url: '/users', headers: { 'content-type': 'application/json' }, payload: json })).json<Echo>()
  t.same([post.method, post.body, post.headers['content-type']], ['POST', json, 'application/json'])
  const csv = (await app.inject({ method: 'PUT', url: '/users/7', headers: { 'content-type': 'text/csv; charset=latin1' }, payload: 'a,b\n1,2' })).json<Echo>()
  t.same([csv.method, csv.body, csv.headers['content-type']], ['PUT', 'a,b\n1,2', 'text/csv; charset=latin1'])
  const untyped = (await app.inject({ method: 'PATCH', url: '/users/7', payload: Buffer.from('raw') })).json<Echo>()
  t.same([untyped.method, untyped.body], ['PATCH', 'raw'], 'a body without a content type too')
  for (const method of ['DELETE', 'OPTIONS'] as const) {
    t.equal((await app.inject({ method, url: '/users/7' })).json<Echo>().method, method)
  }
  const head = await app.inject({ method: 'HEAD', url: '/users' })
  t.same([head.statusCode, head.body], [200, ''])

  t.equal((await app.inject('/users/..%2f..%2fadmin')).statusCode, 400, 'an encoded ../ cannot leave /users on the upstream')
  t.equal((await app.inject({ method: 'TRACE', url: '/users' })).statusCode, 404, 'TRACE is not proxied')
  t.equal((await app.inject('/usersx')).statusCode, 404, 'only /users and below')
  t.equal((await app.inject('/')).statusCode, 404)
  const health = await app.inject({ method: 'POST', url: '/health', payload: { a: 1 } })
  t.equal(health.statusCode, 404, "the gateway's own routes keep Fastify's parsers and are not proxied")
})

t.test('an upstream that drops the connection on every instance: 502 FST_REG_GATEWAY_BAD_GATEWAY', async (t) => {
  await fakeUpstream(t, agent.url, 'dropper', (req) => { req.socket.destroy() })
  const app = await buildGateway(t, { upstream: 'dropper', consul })
  for (const method of ['GET', 'POST'] as const) {
    const res = await app.inject({ method, url: '/users' })
    t.equal(res.statusCode, 502, method)
    t.match(res.json<ErrorBody>(), { statusCode: 502, code: 'FST_REG_GATEWAY_BAD_GATEWAY', error: 'Bad Gateway' })
    t.notMatch(res.body, /127\.0\.0\.1/, 'no internal address in the answer')
  }
})

t.test('an instance that refuses connections: bodies are replayed on another instance for idempotent methods only', async (t) => {
  const [closedPort] = await freePorts(1) as [number]
  await fakeUpstream(t, agent.url, 'half', (req, res) => {
    let body = ''
    req.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => res.end(`${req.method} ${body}`))
  })
  await registerInstance(agent.url, { name: 'half', id: 'half-dead', port: closedPort })
  // Ejection off keeps the refusing instance in the rotation, and round-robin lands every other pick on it.
  const app = await buildGateway(t, { upstream: 'half', consul, discovery: { ejectionMs: 0, balancer: 'round-robin' } })
  await instancesBecome(app, ['half-1', 'half-dead'])
  for (let i = 0; i < 4; i++) {
    const res = await app.inject({ method: 'PUT', url: '/users/1', headers: { 'content-type': 'text/plain' }, payload: `v${i}` })
    t.same([res.statusCode, res.body], [200, `PUT v${i}`], `PUT ${i}`)
  }
  t.ok(app.gateway.dispatcher.stats.retries >= 1, 'the refused PUTs were sent again, body included')

  const dead = await buildGateway(t, { upstream: 'half', consul, discovery: { filter: 'Service.ID == "half-dead"' } })
  await instancesBecome(dead, ['half-dead'])
  for (const method of ['POST', 'PUT'] as const) {
    const res = await dead.inject({ method, url: '/users', headers: { 'content-type': 'application/json' }, payload: '{"name":"Ada"}' })
    t.match([res.statusCode, res.json()], [502, { code: 'FST_REG_GATEWAY_BAD_GATEWAY' }], `${method} with nowhere else to go: a clean 502`)
  }
})

t.test('bodies over the gateway\'s bodyLimit are refused before any upstream is picked', async (t) => {
  const app = await buildGateway(t, { upstream: 'nobody', consul })
  const res = await app.inject({ method: 'POST', url: '/users', headers: { 'content-type': 'application/json' }, payload: 'x'.repeat(1024 * 1024 + 1) })
  t.match([res.statusCode, res.json()], [413, { code: 'FST_ERR_CTP_BODY_TOO_LARGE' }])
  t.equal(app.gateway.dispatcher.stats.requests, 0)
})

t.test('an upstream that never answers: 504 FST_REG_GATEWAY_TIMEOUT after `timeout`', async (t) => {
  await fakeUpstream(t, agent.url, 'sleeper', () => {})
  const app = await buildGateway(t, { upstream: 'sleeper', consul, timeout: 100 })
  const res = await app.inject('/users')
  t.equal(res.statusCode, 504)
  t.match(res.json<ErrorBody>(), { statusCode: 504, code: 'FST_REG_GATEWAY_TIMEOUT', error: 'Gateway Timeout' })
})

t.test('an upstream status Fastify cannot send: 502', async (t) => {
  await fakeUpstream(t, agent.url, 'weird', (_req, res) => { res.writeHead(999).end() })
  const app = await buildGateway(t, { upstream: 'weird', consul })
  const res = await app.inject('/users')
  t.equal(res.statusCode, 502)
  t.match(res.json<ErrorBody>(), { code: 'FST_REG_GATEWAY_BAD_GATEWAY' })
})

t.test('invalid options fail ready() with a code', async (t) => {
  const cases: Array<[string, Parameters<typeof buildGateway>[1], string]> = [
    ['timeout 0', { timeout: 0 }, 'FST_REG_GATEWAY_INVALID_OPTION'],
    ['fractional timeout', { timeout: 1.5 }, 'FST_REG_GATEWAY_INVALID_OPTION'],
    ['negative retries', { discovery: { retries: -1 } }, 'FST_REG_DISCOVERY_INVALID_OPTION'],
    ['empty upstream', { upstream: '' }, 'FST_REG_DISCOVERY_INVALID_OPTION'],
    ['check interval', { upstreamCheck: { interval: -5 } }, 'FST_REG_HEALTH_INVALID_CHECK'],
    ['pseudonym with a space', { pseudonym: 'gw a' }, 'FST_REG_GATEWAY_INVALID_OPTION'],
    ['empty pseudonym', { pseudonym: '' }, 'FST_REG_GATEWAY_INVALID_OPTION'],
    ['allowed host with a port', { dashboard: { allowedHosts: ['gw.example:8080'] } }, 'FST_REG_GATEWAY_INVALID_OPTION'],
    ['allowed hosts not an array', { dashboard: { allowedHosts: 'gw.example' as unknown as string[] } }, 'FST_REG_GATEWAY_INVALID_OPTION'],
    ['allowed host not a string', { dashboard: { allowedHosts: [7 as unknown as string] } }, 'FST_REG_GATEWAY_INVALID_OPTION'],
    ['maxStreams 0', { dashboard: { maxStreams: 0 } }, 'FST_REG_GATEWAY_INVALID_OPTION'],
    ['fractional maxBufferedBytes', { dashboard: { maxBufferedBytes: 1.5 } }, 'FST_REG_GATEWAY_INVALID_OPTION']
  ]
  for (const [name, opts, code] of cases) {
    t.test(name, async (t) => {
      const app = Fastify()
      t.teardown(() => app.close())
      app.register(gateway, { consul, register: false, ...opts })
      await t.rejects(async () => { await app.ready() }, { code })
    })
  }
})
