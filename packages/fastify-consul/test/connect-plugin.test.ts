import t from 'tap'
import Fastify from 'fastify'
import { connectIdentity, startConsul } from '@reg/testkit'
import consulPlugin, { connectNative } from '../src/index.js'
import { get, type ClientTls } from './fixtures/connect-tls.js'
import { eventually } from './fixtures/consul-api.js'
import { recordingLogger } from './fixtures/discovery-logger.js'

// The plugin's `connect` option (#24), wired as a user does: `await connectNative()`, then
// `Fastify({ https: connect.https })`, then the plugin. Against a real -dev agent (Connect on, built-in CA).

const agent = await startConsul({ t })
const consul = { address: agent.address }

async function caller (service: string): Promise<ClientTls> {
  const pair = await connectIdentity(agent, service)
  return { ca: pair.ca, cert: pair.cert, key: pair.key, expect: { service: 'native-api', trustDomain: pair.trustDomain } }
}

t.test('a Connect-native app: registered Native with a TTL check, mutual TLS, intentions enforced with a coded 403', async (t) => {
  const connect = await connectNative({ service: 'native-api', consul })
  const app = Fastify({ https: connect.https })
  t.teardown(() => app.close())
  await app.register(consulPlugin, { service: { name: 'native-api', id: 'native-api-1' }, consul, connect })
  app.get('/hello', async () => ({ hello: 'world' }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port

  const registered = await eventually(async () => {
    const res = await fetch(`${agent.url}/v1/agent/service/native-api-1`)
    return res.ok ? await res.json() as { Connect?: { Native?: boolean } } : undefined
  }, 'the registration')
  t.same(registered.Connect, { Native: true }, 'registered as Connect-native')
  const checks = await (await fetch(`${agent.url}/v1/agent/checks`)).json() as Record<string, { ServiceID: string, Type: string, Status: string }>
  const check = Object.values(checks).find((c) => c.ServiceID === 'native-api-1')!
  t.same([check.Type, check.Status], ['ttl', 'passing'], 'a TTL check by default: Consul\'s HTTP check cannot present a client certificate')

  const web = await caller('web')
  t.same(JSON.parse((await get(port, web, { path: '/hello' })).body), { hello: 'world' }, 'a caller with a Connect certificate is served')
  // Again, over more than the 250 ms in which a fresh decision may be asked once more: from the cache.
  for (let i = 0; i < 5; i++) {
    t.equal((await get(port, web, { path: '/hello' })).status, 200, 'and again')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  await t.rejects(get(port, { ca: web.ca }, { path: '/hello' }), 'no client certificate: refused at the handshake')

  const res = await fetch(`${agent.url}/v1/connect/intentions`, { method: 'POST', body: JSON.stringify({ SourceName: 'web', DestinationName: 'native-api', Action: 'deny' }) })
  const { ID } = await res.json() as { ID: string }
  t.teardown(async () => { await fetch(`${agent.url}/v1/connect/intentions/${ID}`, { method: 'DELETE' }) })
  const denied = await eventually(async () => { const r = await get(port, web, { path: '/hello' }); return r.status === 403 ? r : undefined }, 'a 403')
  t.match(JSON.parse(denied.body), { statusCode: 403, code: 'FST_REG_CONNECT_FORBIDDEN' })
  t.notOk(denied.body.includes(ID), 'the caller learns nothing of the intention')
  await app.close()
  await connect.close()
  t.equal(connect.certificates.state, 'closed', 'closed with the app; closing again is a no-op')
})

t.test('bad wiring fails ready() with a coded error naming the field', async (t) => {
  const connect = await connectNative({ service: 'native-b', consul })
  t.teardown(() => connect.close())
  const plain = Fastify()
  plain.register(consulPlugin, { service: { name: 'native-b' }, register: false, consul, connect })
  await t.rejects(async () => { await plain.ready() }, { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /connect: expected an app created with Fastify\(\{ https: connect\.https \}\)/ }, 'a plain HTTP server')
  await plain.close()
  const other = Fastify({ https: connect.https })
  other.register(consulPlugin, { service: { name: 'native-c' }, register: false, consul, connect })
  await t.rejects(async () => { await other.ready() }, { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /connect: expected a connectNative\(\) handle for service "native-c" \(this one is for "native-b"\)/ })
  const http = Fastify({ https: connect.https })
  http.register(consulPlugin, { service: { name: 'native-b' }, register: false, consul, connect, check: { type: 'http' } })
  await t.rejects(async () => { await http.ready() }, { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /check\.type: expected "ttl", "tcp" or false under connect/ })
  for (const junk of [{ https: {} }, 'connect', null]) {
    const app = Fastify()
    app.register(consulPlugin, { service: { name: 'native-b' }, register: false, consul, connect: junk as never })
    await t.rejects(async () => { await app.ready() }, { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /connect: expected the handle of await connectNative/ }, JSON.stringify(junk))
  }
  for (const bad of [{ service: 'bad name', consul }, undefined]) {
    await t.rejects(connectNative(bad as never), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /connect\.service/ })
  }
})

t.test('connectNative() gives up after readyTimeout when the agent gives no certificate, and says why in its log', async (t) => {
  const logs = recordingLogger()
  await t.rejects(connectNative({ service: 'native-d', consul: { address: '127.0.0.1:1' }, readyTimeout: 300, log: logs.log }), { code: 'FST_REG_CONNECT_NOT_READY' })
  t.ok(logs.at('warn').length > 0, 'the unreachable agent was logged')
})
