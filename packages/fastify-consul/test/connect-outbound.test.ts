import t from 'tap'
import { once } from 'node:events'
import type { TLSSocket } from 'node:tls'
import Fastify, { type FastifyInstance } from 'fastify'
import { request } from 'undici'
import { connectIdentity, connectLeaf, rotateConnectCa, startConsul } from '@reg/testkit'
import consulPlugin, { connectNative, type ConnectNative, type Instance } from '../src/index.js'
import { get, httpsServer } from './fixtures/connect-tls.js'
import { eventually } from './fixtures/consul-api.js'

// Outbound Connect-native (#24 item 3), against a real -dev agent: a dispatcher of an app with a Connect
// identity dials Connect-native instances with its leaf and checks the server's SPIFFE ID; an app without
// one gets a coded error; a CA rotation under load loses nothing. And `inbound: false` (the edge gateway).

const agent = await startConsul({ t })
const consul = { address: agent.address }

/** A Connect-native app as a user writes it; its /who answers the caller's URI SAN and certificate serial. */
async function nativeApp (t: { teardown (fn: () => unknown): void }, service: string, id: string): Promise<{ app: FastifyInstance, port: number, connect: ConnectNative }> {
  const connect = await connectNative({ service, consul })
  const app = Fastify({ https: connect.https })
  t.teardown(() => app.close())
  await app.register(consulPlugin, { service: { name: service, id }, consul, connect })
  app.get('/who', async (req) => {
    const cert = (req.raw.socket as TLSSocket).getPeerCertificate()
    return { instance: id, caller: cert.subjectaltname, callerSerial: cert.serialNumber }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as { port: number }).port, connect }
}

/** An app that calls out with its identity only: plain HTTP to the public, like the sample gateway. */
async function edgeApp (t: { teardown (fn: () => unknown): void }, service: string): Promise<FastifyInstance> {
  const connect = await connectNative({ service, consul, inbound: false })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(consulPlugin, { service: { name: service }, consul, connect, register: false })
  await app.ready()
  return app
}

async function register (body: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${agent.url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify(body) })
  if (!res.ok) throw new Error(`register: ${res.status} ${await res.text()}`)
}

interface Who { instance: string, caller: string, callerSerial: string }

t.test('an impostor holding a Connect certificate for another service is refused, ejected, and the honest instance serves', async (t) => {
  const honest = await nativeApp(t, 'ledger', 'ledger-1')
  // A process with a perfectly valid leaf from the same CA, issued to `billing`, registered as `ledger`.
  const stolen = await connectIdentity(agent, 'billing')
  const ca = stolen.ca
  let impostorConnections = 0
  const impostor = await httpsServer(t, { cert: stolen.cert, key: stolen.key, ca, requestCert: true, rejectUnauthorized: true }, (_req, res) => {
    res.end(JSON.stringify({ instance: 'impostor', caller: '', callerSerial: '' }))
  })
  impostor.server.on('connection', () => { impostorConnections++ })
  await register({ Name: 'ledger', ID: 'ledger-evil', Address: '127.0.0.1', Port: impostor.port, Connect: { Native: true } })
  t.teardown(() => fetch(`${agent.url}/v1/agent/service/deregister/ledger-evil`, { method: 'PUT' }))

  // Negative control: the CA check alone accepts the impostor; only the SPIFFE check stops it.
  const gatewayLeaf = await connectLeaf(agent, 'gateway')
  const unchecked = await get(impostor.port, { ca, cert: gatewayLeaf.cert, key: gatewayLeaf.key })
  t.equal(JSON.parse(unchecked.body).instance, 'impostor', 'control: a client checking only the CA is answered by the impostor')
  impostorConnections = 0

  const gateway = await edgeApp(t, 'gateway')
  // The user's pool TLS settings cannot weaken the check: `rejectUnauthorized: false` is overridden.
  const dispatcher = gateway.consul.dispatcher('ledger', { ejectionMs: '30s', pool: { connect: { timeout: 5000, rejectUnauthorized: false } } })
  t.teardown(() => dispatcher.close())
  await dispatcher.ready
  await eventually(async () => dispatcher.instances.length === 2, 'both instances in the watch')
  t.same(dispatcher.instances.map((i: Instance) => i.connect).sort(), ['native', 'native'], 'instance.connect is "native" for Connect-native registrations')
  const ejected: Array<{ id: string, reason: string }> = []
  dispatcher.events.on('eject', (i, e) => ejected.push({ id: i.id, reason: e.reason }))

  const served: Who[] = []
  for (let i = 0; i < 40; i++) {
    const res = await request('http://ledger/who', { dispatcher })
    t.equal(res.statusCode, 200)
    served.push(await res.body.json() as Who)
  }
  t.ok(served.every((w) => w.instance === 'ledger-1'), 'every request reached the honest instance, none the impostor')
  t.match(served[0]!.caller, /^URI:spiffe:\/\/[^/]+\/ns\/default\/dc\/dc1\/svc\/gateway$/, 'dialed with the gateway\'s own leaf certificate')
  t.same(ejected, [{ id: 'ledger-evil', reason: 'connect' }], 'the impostor is ejected once, as a connection failure')
  t.ok(impostorConnections >= 1 && impostorConnections <= 2, `the impostor saw ${impostorConnections} connection attempt(s) for 40 requests: no retry storm`)
  t.equal(dispatcher.stats.requests, 40)
  t.ok(dispatcher.stats.retries <= 2, `retries stay bounded (${dispatcher.stats.retries})`)
  await honest.app.close()
})

t.test('without a Connect identity, a native-only service fails fast with a coded error; plain instances are still dialed plain', async (t) => {
  await nativeApp(t, 'vault', 'vault-1')
  const plain = Fastify()
  t.teardown(() => plain.close())
  await plain.register(consulPlugin, { service: { name: 'plain-caller' }, consul, register: false })
  await plain.ready()
  const dispatcher = plain.consul.dispatcher('vault')
  t.teardown(() => dispatcher.close())
  await dispatcher.ready
  await eventually(async () => dispatcher.instances.length === 1, 'the instance in the watch')
  const started = performance.now()
  const err = await request('http://vault/who', { dispatcher }).then(() => undefined, (e: Error) => e) as Error & { code?: string, statusCode?: number }
  t.equal(err?.code, 'FST_REG_CONNECT_IDENTITY_REQUIRED', 'a coded error, not NO_INSTANCE and not a hang')
  t.equal(err?.statusCode, 503)
  t.ok(performance.now() - started < 5000, 'and at once (bound only proves it does not wait)')
  t.notMatch(err.message, /127\.0\.0\.1/, 'the message leaks no address')

  // Plain HTTP dialing of the native instance is refused by the instance itself.
  const native = dispatcher.instances[0]!
  await t.rejects(fetch(`http://127.0.0.1:${native.port}/who`), 'plain HTTP to a Connect-native instance is refused')

  // A plain instance of another service: dialed plain, as before (negative control for the filter).
  const echo = Fastify()
  t.teardown(() => echo.close())
  echo.get('/who', async () => ({ instance: 'echo-1' }))
  await echo.listen({ port: 0, host: '127.0.0.1' })
  await register({ Name: 'echo', ID: 'echo-1', Address: '127.0.0.1', Port: (echo.server.address() as { port: number }).port })
  t.teardown(() => fetch(`${agent.url}/v1/agent/service/deregister/echo-1`, { method: 'PUT' }))
  const gateway = await edgeApp(t, 'gateway')
  for (const app of [plain, gateway]) {
    const d = app.consul.dispatcher('echo')
    await d.ready
    const res = await request('http://echo/who', { dispatcher: d })
    t.same(await res.body.json(), { instance: 'echo-1' }, 'a plain instance is dialed plain, with or without an identity')
    await d.close()
  }
})

t.test('inbound: false serves plain HTTP, registers without Connect.Native, keeps the HTTP check, and still dials with the leaf', async (t) => {
  const backend = await nativeApp(t, 'accounts', 'accounts-1')
  const connect = await connectNative({ service: 'edge', consul, inbound: false })
  t.equal(connect.inbound, false)
  t.notOk('https' in connect, 'no server TLS options')
  t.notOk('authorizer' in connect, 'no inbound authorizer')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(consulPlugin, { service: { name: 'edge', id: 'edge-1' }, consul, connect })
  app.get('/health', async () => ({ ok: true }))
  app.get('/accounts', async () => {
    const res = await request('http://accounts/who', { dispatcher: app.consul.dispatcher('accounts') })
    return await res.body.json()
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const registered = await eventually(async () => {
    const res = await fetch(`${agent.url}/v1/agent/service/edge-1`)
    return res.ok ? await res.json() as { Connect?: unknown } : undefined
  }, 'the registration')
  t.notOk((registered.Connect as { Native?: boolean } | undefined)?.Native, 'not registered as Connect-native')
  const checks = await (await fetch(`${agent.url}/v1/agent/checks`)).json() as Record<string, { ServiceID: string, Type: string }>
  t.equal(Object.values(checks).find((c) => c.ServiceID === 'edge-1')?.Type, 'http', 'the default HTTP check: the app serves plain HTTP')
  // Until the backend's registration reaches the watch: 503 NO_INSTANCE before.
  const res = await eventually(async () => { const r = await fetch(`http://127.0.0.1:${port}/accounts`); return r.status === 200 ? r : undefined }, 'a 200')
  t.equal(res.status, 200, 'the public reaches it over plain HTTP, with no client certificate')
  t.match(await res.json(), { instance: 'accounts-1', caller: /svc\/edge$/ }, 'and it calls the native backend as `edge`')
  await app.close()
  t.equal(connect.certificates.state, 'closed', 'the plugin closes the handle')
  await backend.app.close()
  await t.rejects(connectNative({ service: 'edge', consul, inbound: 'no' as never }), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /connect\.inbound: expected a boolean/ })
})

t.test('a CA rotation under a dispatcher load loses nothing, and new connections use the new pair', async (t) => {
  const backend = await nativeApp(t, 'orders', 'orders-1')
  const connect = await connectNative({ service: 'front', consul, inbound: false })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(consulPlugin, { service: { name: 'front' }, consul, connect, register: false })
  await app.ready()
  const dispatcher = app.consul.dispatcher('orders', { retries: 0 })
  await dispatcher.ready
  const before = connect.certificates.current!
  let ok = 0
  const failures: string[] = []
  const running = { on: true }
  const load = (async () => {
    while (running.on) {
      await Promise.all(Array.from({ length: 4 }, async () => {
        try {
          const res = await request('http://orders/who', { dispatcher })
          await res.body.dump()
          if (res.statusCode === 200) ok++
          else failures.push(String(res.statusCode))
        } catch (err) {
          const e = err as Error & { code?: string, cause?: Error & { code?: string } }
          failures.push(`${e.code ?? String(e)} (${e.cause?.code ?? ''})`)
        }
      }))
      // A steady load, not a busy loop on a shared machine.
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })()
  await rotateConnectCa(agent)
  // Both sides re-issue within Consul's 30 s spread: wait for our leaf and the backend's to be re-signed.
  await eventually(async () => {
    const mine = connect.certificates.current!
    const theirs = backend.connect.certificates.current!
    return mine.serial !== before.serial && mine.activeRootId !== before.activeRootId && theirs.activeRootId === mine.activeRootId
  }, 'both leaves re-issued under the new root', 60_000)
  // New connections (a new dispatcher's pools) are made with the new pair.
  const mine = connect.certificates.current!
  const fresh = app.consul.dispatcher('orders')
  t.teardown(() => fresh.close())
  await fresh.ready
  const who = await eventually(async () => {
    const res = await request('http://orders/who', { dispatcher: fresh })
    const w = await res.body.json() as Who
    return w.callerSerial.toLowerCase().replace(/^0+/, '') === mine.serial.replace(/:/g, '').replace(/^0+/, '') ? w : undefined
  }, 'a request carried by the new leaf')
  running.on = false
  await load
  t.ok(who, 'the backend sees the gateway\'s new leaf on a new connection')
  t.same(failures, [], `0 failed requests across the rotation (${ok} succeeded)`)
  t.ok(ok > 20, 'and the load did run')
  await dispatcher.close()
})

t.test('connection refused and a plain-HTTP server registered as native are ejected like any failure', async (t) => {
  // A plain HTTP server registered as Connect-native: the TLS handshake fails (wrong version number).
  const liar = Fastify()
  t.teardown(() => liar.close())
  liar.get('/who', async () => ({ instance: 'liar' }))
  await liar.listen({ port: 0, host: '127.0.0.1' })
  await register({ Name: 'liar', ID: 'liar-1', Address: '127.0.0.1', Port: (liar.server.address() as { port: number }).port, Connect: { Native: true } })
  t.teardown(() => fetch(`${agent.url}/v1/agent/service/deregister/liar-1`, { method: 'PUT' }))
  const gateway = await edgeApp(t, 'gateway')
  const dispatcher = gateway.consul.dispatcher('liar', { pool: { connectTimeout: 5000 } })
  t.teardown(() => dispatcher.close())
  await dispatcher.ready
  const [err] = await Promise.all([
    request('http://liar/who', { dispatcher }).then(() => undefined, (e: Error) => e) as Promise<Error & { code?: string, cause?: Error & { code?: string } }>,
    once(dispatcher.events, 'eject')
  ])
  t.equal(err?.code, 'FST_REG_DISCOVERY_DISPATCH_FAILED')
  t.equal(err?.cause?.code, 'FST_REG_CONNECT_UPSTREAM_REFUSED', 'the try failed in TLS: coded, and never reached the plain server')
  t.match(err?.cause?.message, /TLS handshake failed \(ERR_SSL_[A-Z_]+\)/)
})
