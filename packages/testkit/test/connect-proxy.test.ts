import t from 'tap'
import { createServer } from 'node:http'
import { connect as tlsConnect } from 'node:tls'
import type { AddressInfo } from 'node:net'
import { freePorts, startConnectProxy, startConsul, type TestLike } from '../src/index.js'

// Consul 1.8.7's built-in proxy as a real sidecar (`consul connect proxy -sidecar-for <id>`).

const agent = await startConsul({ t })

async function register (body: object): Promise<void> {
  const res = await fetch(`${agent.url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify(body) })
  if (!res.ok) throw new Error(await res.text())
}

function refused (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false })
    s.once('secureConnect', () => { s.destroy(); resolve(false) })
    s.once('error', (err: Error & { code?: string }) => resolve(err.code === 'ECONNREFUSED'))
  })
}

t.test('runs the sidecar of a registered service: its public mTLS port and its upstream ports listen; stop() ends it', async (t) => {
  // The service itself: the proxy dials it for each inbound connection, before the handshake.
  const app = createServer((_req, res) => res.end('kit-web'))
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { app.closeAllConnections(); app.close() })
  const servicePort = (app.address() as AddressInfo).port
  const [publicPort, upstreamPort] = await freePorts(2) as [number, number]
  await register({ ID: 'kit-web-1', Name: 'kit-web', Port: servicePort, Connect: { SidecarService: { Port: publicPort, Proxy: { Upstreams: [{ DestinationName: 'kit-db', LocalBindPort: upstreamPort }] } } } })
  const comments: unknown[] = []
  const teardowns: Array<() => unknown> = []
  const fakeT: TestLike = { teardown: (fn) => teardowns.push(fn), passing: () => false, comment: (...args) => comments.push(...args) }
  // A token with ACLs off is ignored by the agent; it still travels in the environment.
  const proxy = await startConnectProxy({ agent, sidecarFor: 'kit-web-1', token: 'unused', t: fakeT })
  t.teardown(() => proxy.stop())
  t.equal(proxy.id, 'kit-web-1-sidecar-proxy')
  t.equal(proxy.publicPort, publicPort)
  t.same(proxy.upstreams, { 'kit-db': upstreamPort })
  // The public port speaks mutual TLS with a Connect leaf certificate (for kit-web); we call as kit-client.
  const leaf = await (await fetch(`${agent.url}/v1/agent/connect/ca/leaf/kit-client`)).json() as { CertPEM: string, PrivateKeyPEM: string }
  const peer = await new Promise<{ uri: string | undefined }>((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: publicPort, rejectUnauthorized: false, cert: leaf.CertPEM, key: leaf.PrivateKeyPEM })
    s.once('secureConnect', () => { resolve({ uri: s.getPeerCertificate().subjectaltname }); s.destroy() })
    s.once('error', reject)
  })
  t.match(peer.uri, /URI:spiffe:\/\/[^/]+\/ns\/default\/dc\/dc1\/svc\/kit-web/, 'the public port presents kit-web\'s leaf certificate')
  t.match(proxy.log(), /Starting listener/)

  for (const fn of teardowns) await fn()
  t.ok(comments.some((c) => String(c).includes('consul connect proxy for kit-web-1 log')), 'a failed test prints the proxy\'s log')
  t.ok(await refused(publicPort), 'stopped: the public port is closed')
  await proxy.stop()
  t.pass('stop() again is a no-op')

  const teardownsOk: Array<() => unknown> = []
  const quiet = await startConnectProxy({ agent, sidecarFor: 'kit-web-1', t: { teardown: (fn) => teardownsOk.push(fn), passing: () => true, comment: () => t.fail('no log for a passing test') } })
  t.teardown(() => quiet.stop())
  for (const fn of teardownsOk) await fn()
  t.ok(await refused(quiet.publicPort))
})

t.test('fails clearly: no sidecar registered, listeners not up in time, the proxy exiting, an agent that refuses', async (t) => {
  await t.rejects(startConnectProxy({ agent, sidecarFor: 'nobody', readyTimeout: 200 }), /no sidecar is registered for service ID "nobody"/)

  const [servicePort, publicPort] = await freePorts(2) as [number, number]
  await register({ ID: 'kit-slow-1', Name: 'kit-slow', Port: servicePort, Connect: { SidecarService: { Port: publicPort } } })
  await t.rejects(startConnectProxy({ agent, sidecarFor: 'kit-slow-1', readyTimeout: 1 }), /did not listen on 127\.0\.0\.1:\d+ in time[^]*--- proxy log ---/)
  t.ok(await refused(publicPort), 'the proxy started for nothing is stopped')

  // A fake agent that lists the sidecar to startConnectProxy only: the real proxy then finds none and exits.
  let listed = 0
  const fake = createServer((req, res) => {
    if (req.url === '/v1/agent/services' && req.headers['x-consul-token'] === 'deny') {
      res.statusCode = 403
      res.end('ACL not found')
    } else if (req.url === '/v1/agent/services' && listed++ === 0) {
      res.end(JSON.stringify({ s: { ID: 's-sidecar-proxy', Kind: 'connect-proxy', Port: publicPort, Proxy: { DestinationServiceID: 's' } } }))
    } else {
      res.end('{}')
    }
  })
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { fake.closeAllConnections(); fake.close() })
  const address = `127.0.0.1:${(fake.address() as AddressInfo).port}`
  await t.rejects(startConnectProxy({ agent: { address }, sidecarFor: 's', readyTimeout: 20_000 }), /exited during start/)
  await t.rejects(startConnectProxy({ agent: { address }, sidecarFor: 's', token: 'deny' }), /answered 403: ACL not found/)
})
