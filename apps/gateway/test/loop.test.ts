import type { IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import consulPlugin, { type ServiceWatch } from '@reg/fastify-consul'
import { startConsul } from '@reg/testkit'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import { request } from 'undici'
import { proxyRoutes } from '../src/proxy.js'
import { buildGateway, instancesBecome, until, type ErrorBody, type Teardown } from './fixtures/app.js'
import { fakeUpstream, registerInstance } from './fixtures/consul.js'

// Forwarding loops (issue #31): an upstream instance registered in Consul at a gateway's own address made
// one client request into hundreds of internal ones. Every gateway here is in-process and listening, and
// counts the requests that reach its server, client and internal alike. Against one real Consul agent.
// Before the Via check (and before the dispatcher skipped its own address), the self-addressed cases
// below answered only after about 200 internal requests, as the last test's control still does.

const agent = await startConsul({ t })
const consul = { address: agent.address }

interface Counted {
  app: FastifyInstance
  port: number
  /** Requests that reached this gateway's HTTP server so far. */
  received: () => number
}

async function listening (app: FastifyInstance): Promise<Counted> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  let received = 0
  app.server.on('request', () => { received++ })
  return { app, port: (app.server.address() as AddressInfo).port, received: () => received }
}

/** One GET /users through `port`, bounded: a loop that never answers fails the test instead of hanging it. */
async function get (port: number): Promise<{ status: number, body: ErrorBody }> {
  const res = await request(`http://127.0.0.1:${port}/users`, { headersTimeout: 20_000, bodyTimeout: 20_000 })
  return { status: res.statusCode, body: await res.body.json() as ErrorBody }
}

// Two layers stop a gateway sent to itself: @reg/fastify-consul's dispatcher never routes to the address
// it listens on (a 503 with no internal request), and the Via check catches what an address comparison
// cannot (a 508 after one). Either way, at most one internal request and a coded answer.
const SELF_ADDRESSES = [
  ['its own address', '127.0.0.1'],
  ['localhost', 'localhost'],
  ['its address IPv4-mapped', '::ffff:127.0.0.1']
] as const

for (const [what, address] of SELF_ADDRESSES) {
  t.test(`an instance at ${what}: one client request costs at most one internal request, answered with a code`, async (t) => {
    const name = `self-${address.replace(/[^a-z0-9]/g, '')}`
    // The default pseudonym: fixed at listen from the bound port, as the service id would be.
    const gateway = await listening(await buildGateway(t, { upstream: name, consul, register: false }))
    t.match(gateway.app.gateway.pseudonym, new RegExp(`^gateway-.+-${gateway.port}$`), 'the default pseudonym has the bound port')
    await registerInstance(agent.url, { name, id: `${name}-1`, port: gateway.port, address })
    await instancesBecome(gateway.app, [`${name}-1`])

    for (let i = 1; i <= 3; i++) {
      const { status, body } = await get(gateway.port)
      const internal = gateway.received() - i
      t.comment(`${address}: ${status} ${body.code} after ${internal} internal request(s) in all`)
      t.ok(internal <= i, `request ${i}: at most one internal request each (${internal} in all)`)
      t.ok([508, 503].includes(status), `request ${i}: ${status}`)
      t.equal(body.code, status === 508 ? 'FST_REG_GATEWAY_LOOP_DETECTED' : 'FST_REG_DISCOVERY_NO_INSTANCE')
    }
  })
}

t.test('a ring of two gateways: each request goes round once and is refused where it started', async (t) => {
  const a = await listening(await buildGateway(t, { upstream: 'to-b', consul, register: false, pseudonym: 'gw-a' }))
  const b = await listening(await buildGateway(t, { upstream: 'to-a', consul, register: false, pseudonym: 'gw-b' }))
  await registerInstance(agent.url, { name: 'to-b', id: 'to-b-1', port: b.port })
  await registerInstance(agent.url, { name: 'to-a', id: 'to-a-1', port: a.port })
  await Promise.all([instancesBecome(a.app, ['to-b-1']), instancesBecome(b.app, ['to-a-1'])])

  const { status, body } = await get(a.port)
  t.equal(status, 508)
  t.equal(body.code, 'FST_REG_GATEWAY_LOOP_DETECTED', 'relayed back by b and a as the answer')
  t.equal(a.received(), 2, 'a: the client\'s request and its own coming back')
  t.equal(b.received(), 1, 'b: once')
})

t.test('control: a legitimate chain gateway → gateway → upstream works, Via naming both', async (t) => {
  let seen: IncomingHttpHeaders | undefined
  await fakeUpstream(t, agent.url, 'chain-users', (req, res) => {
    seen = req.headers
    res.writeHead(200, { 'content-type': 'application/json' }).end('[]')
  })
  const inner = await listening(await buildGateway(t, { upstream: 'chain-users', consul, register: false, serviceId: 'gw-inner' }))
  const outer = await listening(await buildGateway(t, { upstream: 'chain-inner', consul, register: false, serviceId: 'gw-outer' }))
  await registerInstance(agent.url, { name: 'chain-inner', id: 'chain-inner-1', port: inner.port })
  await Promise.all([instancesBecome(outer.app, ['chain-inner-1']), instancesBecome(inner.app, ['chain-users-1'])])

  const res = await request(`http://127.0.0.1:${outer.port}/users`, { headers: { via: '1.0 client-proxy (squid)' } })
  t.equal(res.statusCode, 200)
  t.same(await res.body.json(), [])
  t.equal(seen?.via, '1.0 client-proxy (squid), 1.1 gw-outer, 1.1 gw-inner', 'each gateway appended its service id; what came before stays')
  t.equal(outer.received() + inner.received(), 2, 'one request each')
})

/** The gateway's own proxy routes and dispatcher, composed without app.ts's refuseLoops hook: the gateway as it was. */
async function unchecked (t: Teardown, upstream: string): Promise<Counted & { watch: ServiceWatch }> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(consulPlugin, { service: { name: 'unchecked' }, consul, register: false })
  const watch = app.consul.discover(upstream)
  // Retries off, so the count is the loop alone.
  const dispatcher = app.consul.dispatcher(watch, { retries: 0 })
  await app.register(proxyRoutes, { upstream, dispatcher, timeout: 20_000, pseudonym: () => `gw-${upstream}` })
  return { ...await listening(app), watch }
}

t.test('control: a ring of the same proxy routes without the Via check goes round until the headers pass 16 KB', async (t) => {
  const a = await unchecked(t, 'unchecked-to-b')
  const b = await unchecked(t, 'unchecked-to-a')
  await registerInstance(agent.url, { name: 'unchecked-to-b', id: 'unchecked-b', port: b.port })
  await registerInstance(agent.url, { name: 'unchecked-to-a', id: 'unchecked-a', port: a.port })
  await until(() => a.watch.instances.length === 1 && b.watch.instances.length === 1, 'each sees the other')

  const { status } = await get(a.port)
  const internal = a.received() + b.received() - 1
  t.comment(`one client request became ${internal} internal requests, then ${status}`)
  t.ok(internal > 50, 'the loop multiplies requests')
  t.not(status, 200)
})
