import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startConsulFederation } from '@reg/testkit'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { gatewayOptions, loadConfig } from '../src/config.js'
import { RequestWindow, snapshot, type DashboardSnapshot } from '../src/dashboard-snapshot.js'
import { buildGateway, until, type Teardown } from './fixtures/app.js'
import { GATEWAY_JS, startServer } from './fixtures/server.js'

// Issue #25's failover drill, for real: two Consul datacenters WAN-joined on loopback, two upstreams in
// each, and the gateway built from its environment exactly as server.ts builds it (gatewayOptions of
// loadConfig), talking to dc1's agent only. The upstreams are plain HTTP servers with TTL checks, so
// a test turns a whole datacenter critical (and back) in one call per instance, and every answer says
// which instance gave it. Each test has its own service name on the one federation of the file.

const federation = await startConsulFederation({ t })
const dc1 = federation.agents.dc1!
const dc2 = federation.agents.dc2!

/** How many requests a batch sends once the routing is known: enough that a stray pick would show. */
const BATCH = 20

/**
 * An upstream answering every request with its id (body and `x-instance-id`), registered on `agentUrl`
 * as `name` with a passing TTL check, which Consul names `service:<id>`. The TTL is far longer than the
 * test: only the test turns it critical.
 */
async function upstream (t: Teardown, agentUrl: string, name: string, id: string, meta: Record<string, string> = {}): Promise<void> {
  const server = createServer((_req, res) => {
    res.setHeader('x-instance-id', id)
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ id }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => {
    server.closeAllConnections()
    server.close(resolve)
  }))
  const { port } = server.address() as AddressInfo
  const res = await fetch(`${agentUrl}/v1/agent/service/register`, {
    method: 'PUT',
    body: JSON.stringify({ Name: name, ID: id, Address: '127.0.0.1', Port: port, Meta: meta, Check: { TTL: '10m', Status: 'passing' } })
  })
  if (!res.ok) throw new Error(`registering ${id}: ${res.status} ${await res.text()}`)
}

/** Sets an upstream's TTL check: `fail` makes it critical, `pass` passing again. */
async function setCheck (agentUrl: string, id: string, verb: 'fail' | 'pass'): Promise<void> {
  const res = await fetch(`${agentUrl}/v1/agent/check/${verb}/service:${encodeURIComponent(id)}`, { method: 'PUT' })
  if (!res.ok) throw new Error(`${verb} ${id}: ${res.status} ${await res.text()}`)
}

/** One GET /users through the gateway: which upstream answered (the status must be 200). */
async function answeredBy (gateway: FastifyInstance): Promise<string> {
  const res = await gateway.inject('/users')
  if (res.statusCode !== 200) throw new Error(`GET /users: ${res.statusCode} ${res.body}`)
  return String(res.headers['x-instance-id'])
}

/** GETs until one is answered by an id starting with `prefix`; bounded, so a failover that never happens fails. */
async function firstAnswerFrom (gateway: FastifyInstance, prefix: string, timeout = 20_000): Promise<void> {
  const deadline = Date.now() + timeout
  const seen = new Set<string>()
  for (;;) {
    const id = await answeredBy(gateway)
    if (id.startsWith(prefix)) return
    seen.add(id)
    if (Date.now() > deadline) throw new Error(`no answer from ${prefix}* within ${timeout} ms; answered by ${[...seen].join(', ')}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Who answered a batch of GETs, sorted and deduplicated. */
async function batch (gateway: FastifyInstance): Promise<string[]> {
  const ids = new Set<string>()
  for (let i = 0; i < BATCH; i++) ids.add(await answeredBy(gateway))
  return [...ids].sort()
}

/** The live view's snapshot of the gateway now (what /_gateway/events would send). */
function view (gateway: FastifyInstance): DashboardSnapshot {
  return snapshot(gateway.gateway.watch, gateway.gateway.dispatcher, new RequestWindow(), Date.now())
}

/** The split as the live view draws it: datacenter, zone, load in %, state. */
function split (gateway: FastifyInstance): Array<[string | null, string | null, number, string]> {
  return view(gateway).priorities.map((p) => [p.datacenter, p.zone, Math.round(p.load * 100), p.state])
}

/** The gateway from its environment, as server.ts builds it, against dc1's agent; registered on listen only if asked. */
async function gatewayFromEnv (t: Teardown, env: Record<string, string>, register = false): Promise<FastifyInstance> {
  return await buildGateway(t, { ...gatewayOptions(loadConfig({ CONSUL_HTTP_ADDR: dc1.address, ...env })), register })
}

t.test('REG_FAILOVER=dc2: dc1 serves; with dc1 critical dc2 does; with dc1 passing again dc1 does', async (t) => {
  const name = 'drill'
  for (const id of ['dc1-a', 'dc1-b']) await upstream(t, dc1.url, name, id)
  for (const id of ['dc2-a', 'dc2-b']) await upstream(t, dc2.url, name, id)
  const gateway = await gatewayFromEnv(t, { UPSTREAM_SERVICE: name, REG_FAILOVER: 'dc2' })
  const { watch } = gateway.gateway
  await until(() => watch.all.length === 4, 'the watch lists both datacenters\' instances')

  t.same(await batch(gateway), ['dc1-a', 'dc1-b'], 'dc1 healthy: every request stays in dc1')
  t.same(split(gateway), [['dc1', null, 100, 'live'], ['dc2', null, 0, 'live']], 'the split: dc1 100 %, dc2 0 %')
  t.same(view(gateway).instances.map((i) => [i.id, i.datacenter]).sort(), [['dc1-a', 'dc1'], ['dc1-b', 'dc1'], ['dc2-a', 'dc2'], ['dc2-b', 'dc2']],
    'each row says its datacenter')

  for (const id of ['dc1-a', 'dc1-b']) await setCheck(dc1.url, id, 'fail')
  await firstAnswerFrom(gateway, 'dc2-')
  await until(() => watch.priorities[0]?.routable === 0, 'dc1 seen with no routable instance')
  t.same(await batch(gateway), ['dc2-a', 'dc2-b'], 'dc1 critical: every request goes to dc2')
  t.same(split(gateway), [['dc1', null, 0, 'live'], ['dc2', null, 100, 'live']], 'the split: dc1 0 %, dc2 100 %')
  t.equal(watch.panic, false, 'not a panic: dc2 is healthy')

  for (const id of ['dc1-a', 'dc1-b']) await setCheck(dc1.url, id, 'pass')
  await firstAnswerFrom(gateway, 'dc1-')
  // Both checks pass at once only in Consul's next answer: with one of two, dc1 takes 70 % (1.4 × ½).
  await until(() => watch.priorities[0]?.routable === 2, 'both dc1 instances routable again')
  t.same(await batch(gateway), ['dc1-a', 'dc1-b'], 'dc1 passing again: every request is back in dc1')
  t.same(split(gateway), [['dc1', null, 100, 'live'], ['dc2', null, 0, 'live']])
})

t.test('negative control, REG_FAILOVER unset: dc1 critical is a panic in dc1, never an answer from dc2', async (t) => {
  const name = 'control'
  for (const id of ['dc1-a', 'dc1-b']) await upstream(t, dc1.url, name, id)
  for (const id of ['dc2-a', 'dc2-b']) await upstream(t, dc2.url, name, id)
  const gateway = await gatewayFromEnv(t, { UPSTREAM_SERVICE: name })
  const { watch } = gateway.gateway
  await until(() => watch.all.length === 2, 'the watch lists dc1\'s instances')
  t.same(await batch(gateway), ['dc1-a', 'dc1-b'])

  for (const id of ['dc1-a', 'dc1-b']) await setCheck(dc1.url, id, 'fail')
  await until(() => watch.panic, 'the watch in panic')
  t.same(watch.all.map((i) => [i.id, i.status]).sort(), [['dc1-a', 'critical'], ['dc1-b', 'critical']], 'it knows dc1 only, all critical')
  t.same(await batch(gateway), ['dc1-a', 'dc1-b'], 'every request still goes to dc1 (routing to all in panic), none to dc2')
  t.same(split(gateway), [['dc1', null, 100, 'live']], 'one level')
})

t.test('REG_FAILOVER naming a datacenter Consul does not know: ready() fails, and so does the server', async (t) => {
  await t.rejects(gatewayFromEnv(t, { REG_FAILOVER: 'dc9' }), {
    code: 'FST_REG_DISCOVERY_UNKNOWN_DATACENTER',
    message: /discovery\.failover\.datacenters\[0\]/
  })
  await t.rejects(gatewayFromEnv(t, { REG_FAILOVER: 'dc2,dc9' }), { code: 'FST_REG_DISCOVERY_UNKNOWN_DATACENTER', message: /datacenters\[1\]/ }, 'the index of the unknown one')

  const server = startServer(t, GATEWAY_JS, { CONSUL_HTTP_ADDR: dc1.address, PORT: '0', REG_FAILOVER: 'dc9', LOG_LEVEL: 'warn' })
  t.same(await server.exited, { code: 1, signal: null }, 'the built gateway exits 1')
  t.match(server.logs().find((r) => r.msg === 'could not start'), { level: 60, err: { code: 'FST_REG_DISCOVERY_UNKNOWN_DATACENTER' } }, 'logged at fatal with the cause')
})

t.test('REG_ZONE: the gateway registers its zone and prefers upstreams in it while they are healthy', async (t) => {
  const name = 'zoned'
  await upstream(t, dc1.url, name, 'zone-a', { zone: 'a' })
  await upstream(t, dc1.url, name, 'zone-b', { zone: 'b' })
  const gateway = await gatewayFromEnv(t, { UPSTREAM_SERVICE: name, REG_ZONE: 'a', SERVICE_ID: 'gateway-zoned' }, true)
  const { watch } = gateway.gateway
  await until(() => watch.all.length === 2, 'the watch lists both zones')
  t.same(await batch(gateway), ['zone-a'], 'every request goes to the gateway\'s own zone')
  t.same(split(gateway), [['dc1', 'a', 100, 'live'], ['dc1', null, 0, 'live']], 'the split: zone a, then the other zones')
  t.same(view(gateway).instances.map((i) => [i.id, i.zone]).sort(), [['zone-a', 'a'], ['zone-b', 'b']], 'each row says its zone')

  await setCheck(dc1.url, 'zone-a', 'fail')
  await firstAnswerFrom(gateway, 'zone-b')
  t.same(await batch(gateway), ['zone-b'], 'its zone has no healthy instance: the other zone serves')

  await gateway.listen({ host: '127.0.0.1', port: 0 })
  await until(() => gateway.consul.state === 'registered', 'the gateway registered')
  const registered = await (await fetch(`${dc1.url}/v1/agent/service/gateway-zoned`)).json() as { Meta: Record<string, string> }
  t.equal(registered.Meta.zone, 'a', 'registered with meta zone')
})
