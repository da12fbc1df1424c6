import { freePorts, serviceUntil, startConsul } from '@reg/testkit'
import t from 'tap'
import { GATEWAY_JS, startServer, USER_SERVICE_JS, whileRunning } from './fixtures/server.js'

// REG_CONNECT=true end to end (issue #24, item 8): the built gateway and two built user-service replicas
// on a real -dev agent (Connect on, with its built-in CA). The replicas serve Connect-native mutual TLS
// only, so every 200 through the gateway is a request the gateway made with its own leaf certificate
// and whose server it checked. Intentions then act on the gateway's calls, as the root README's demo shows.

const agent = await startConsul({ t })

interface Answer { status: number, code: string | undefined, instance: string | undefined }

async function get (base: string): Promise<Answer> {
  const res = await fetch(`${base}/users`)
  const text = await res.text()
  let code: string | undefined
  try { code = (JSON.parse(text) as { code?: string }).code } catch { code = undefined }
  return { status: res.status, code, instance: res.headers.get('x-instance-id') ?? undefined }
}

/** Asks until `want` holds or `ms` pass; the answers seen and how long it took (a trace, not an assertion on speed). */
async function until (base: string, want: (a: Answer) => boolean, ms: number): Promise<{ answer: Answer, took: number }> {
  const start = performance.now()
  let answer = await get(base)
  while (!want(answer) && performance.now() - start < ms) answer = await get(base)
  return { answer, took: Math.round(performance.now() - start) }
}

t.test('REG_CONNECT=true on both apps: the gateway calls user-service over Connect mTLS; a deny intention turns its calls into coded 403s, deleting it restores them', async (t) => {
  const [g1, a1, g2, a2, ...replicaPorts] = await freePorts(6) as [number, number, number, number, number, number]
  const ids = ['user-service-c1', 'user-service-c2']
  const replicas = ids.map((id, n) => startServer(t, USER_SERVICE_JS, {
    CONSUL_HTTP_ADDR: agent.address, USERS_DB: ':memory:', LOG_LEVEL: 'warn', PORT: String(replicaPorts[n]), ADMIN_PORT: '0', SERVICE_ID: id, REG_CONNECT: 'true'
  }))
  await whileRunning(replicas, serviceUntil(agent.url, 'user-service', (e) => e.length === 2, { passing: true }))

  const gateway = startServer(t, GATEWAY_JS, { CONSUL_HTTP_ADDR: agent.address, PORT: String(g1), ADMIN_PORT: String(a1), SERVICE_ID: 'gateway-connect', LOG_LEVEL: 'warn', REG_CONNECT: 'true' })
  // Negative control: the same gateway without REG_CONNECT holds no certificate, so it cannot reach them.
  const plain = startServer(t, GATEWAY_JS, { CONSUL_HTTP_ADDR: agent.address, PORT: String(g2), ADMIN_PORT: String(a2), SERVICE_ID: 'gateway-plain', LOG_LEVEL: 'warn' })
  const all = [gateway, plain, ...replicas]
  await whileRunning(all, serviceUntil(agent.url, 'gateway', (e) => e.length === 2, { passing: true }))
  const base = `http://127.0.0.1:${g1}`

  const registered = await (await fetch(`${agent.url}/v1/agent/service/gateway-connect`)).json() as { Connect?: unknown, Port: number }
  t.equal(registered.Connect, undefined, 'the gateway is an edge: it does not register as Connect-native (its public port is plain HTTP)')
  t.equal(registered.Port, g1)

  const served = new Set<string>()
  for (let i = 0; i < 20; i++) {
    const answer = await whileRunning(all, get(base))
    t.equal(answer.status, 200, `request ${i} through the gateway is served`)
    if (answer.instance !== undefined) served.add(answer.instance)
  }
  t.same([...served].sort(), ids, 'both Connect-native replicas serve the gateway')

  const refused = await whileRunning(all, get(`http://127.0.0.1:${g2}`))
  t.match(refused, { status: 503, code: 'FST_REG_CONNECT_IDENTITY_REQUIRED' },
    'negative control: a gateway without REG_CONNECT gets a coded 503, so the 200s above did need the gateway\'s certificate')

  // The demo's `consul intention create -deny gateway user-service`, through the HTTP API.
  const res = await fetch(`${agent.url}/v1/connect/intentions`, { method: 'POST', body: JSON.stringify({ SourceName: 'gateway', DestinationName: 'user-service', Action: 'deny' }) })
  const { ID } = await res.json() as { ID: string }
  const denied = await whileRunning(all, until(base, (a) => a.status === 403, 5000))
  t.match(denied.answer, { status: 403, code: 'FST_REG_CONNECT_FORBIDDEN' }, 'the deny reaches the gateway\'s calls as a coded 403 (within a 5 s bound that proves it happens)')
  t.comment(`deny → first 403 through the gateway: ${denied.took} ms`)
  // A 403 is the replica's answer, not a failure: the gateway passes it on instead of ejecting replicas.
  const stillDenied = await whileRunning(all, get(base))
  t.match(stillDenied, { status: 403, code: 'FST_REG_CONNECT_FORBIDDEN' }, 'and stays denied')

  await fetch(`${agent.url}/v1/connect/intentions/${ID}`, { method: 'DELETE' })
  const allowed = await whileRunning(all, until(base, (a) => a.status === 200, 5000))
  t.equal(allowed.answer.status, 200, 'served again once the intention is deleted')
  t.comment(`delete → first 200 through the gateway: ${allowed.took} ms`)
  const afterwards = await whileRunning(all, Promise.all(Array.from({ length: 10 }, async () => await get(base))))
  t.same(afterwards.map((a) => a.status), Array(10).fill(200), 'both replicas were kept: a deny ejects nobody')

  for (const p of all) p.child.kill('SIGTERM')
  for (const p of all) t.same(await p.exited, { code: 0, signal: null }, 'a graceful shutdown exits 0')
  t.equal(gateway.stderr(), '')
})
