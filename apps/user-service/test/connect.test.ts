import { request, type RequestOptions } from 'node:https'
import type { PeerCertificate } from 'node:tls'
import { connectIdentity, freePorts, serviceUntil, startConsul } from '@reg/testkit'
import t from 'tap'
import { startServer, whileRunning } from './fixtures/server.js'

// REG_CONNECT=true (issue #24, item 8, the serving side): the built user-service against a real -dev agent
// (Connect on, with its built-in CA). PORT serves Connect-native mutual TLS, with every caller checked
// against the intentions; the check is a TTL; /metrics and the detailed /health are on the admin port in
// plain HTTP. The caller here holds a leaf certificate the agent issued to `gateway`, as the gateway will.

interface Answer { status: number, body: string, instance: string | undefined }

const agent = await startConsul({ t })

/**
 * One request over mutual TLS, checking the server as a Connect client must: its chain against the
 * roots, then its SPIFFE identity (a leaf has no DNS name, so the hostname check cannot apply).
 */
async function mtls (port: number, tls: Pick<RequestOptions, 'cert' | 'key' | 'ca'>, expected: string, method = 'GET', path = '/users', body?: string): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      method,
      path,
      ...tls,
      agent: false,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      checkServerIdentity: (_host: string, cert: PeerCertificate) =>
        cert.subjectaltname === `URI:${expected}` ? undefined : new Error(`the server is ${cert.subjectaltname}, not ${expected}`)
    }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk }).on('end', () => {
        resolve({ status: res.statusCode!, body: text, instance: res.headers['x-instance-id'] as string | undefined })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

t.test('REG_CONNECT=true: registered Connect-native with a TTL check; mTLS on PORT with intentions; /metrics and /health on the admin port in plain HTTP', async (t) => {
  const [port, adminPort] = await freePorts(2) as [number, number]
  const serviceId = 'user-service-native'
  const server = startServer(t, { PORT: String(port), ADMIN_PORT: String(adminPort), CONSUL_HTTP_ADDR: agent.address, USERS_DB: ':memory:', SERVICE_ID: serviceId, REG_CONNECT: 'true' })
  await whileRunning(server, serviceUntil(agent.url, 'user-service', (e) => e.length === 1, { passing: true }))

  const registered = await (await fetch(`${agent.url}/v1/agent/service/${serviceId}`)).json() as { Port: number, Connect?: { Native?: boolean }, Meta: Record<string, string> }
  t.same(registered.Connect, { Native: true }, 'registered as Connect-native')
  t.equal(registered.Port, port)
  t.equal(registered.Meta.metrics_port, String(adminPort), 'the admin port in its meta, for Prometheus')
  const checks = await (await fetch(`${agent.url}/v1/agent/checks`)).json() as Record<string, { ServiceID: string, Type: string, Status: string }>
  t.same(Object.values(checks).filter((c) => c.ServiceID === serviceId).map((c) => [c.Type, c.Status]), [['ttl', 'passing']],
    'a TTL check, passing: Consul\'s HTTP check could not present a client certificate')

  const gateway = await connectIdentity(agent, 'gateway')
  const userService = `spiffe://${gateway.trustDomain}/ns/default/dc/dc1/svc/user-service`
  const created = await mtls(port, gateway, userService, 'POST', '/users', JSON.stringify({ name: 'Ada', email: 'ada@example.com' }))
  t.equal(created.status, 201, 'a caller with a Connect certificate is served')
  t.equal(created.instance, serviceId)
  const ada = JSON.parse(created.body) as { id: string }
  t.same(JSON.parse((await mtls(port, gateway, userService, 'GET', `/users/${ada.id}`)).body), ada)
  await t.rejects(mtls(port, gateway, `spiffe://${gateway.trustDomain}/ns/default/dc/dc1/svc/billing`), /the server is .*svc\/user-service, not .*svc\/billing/,
    'negative control: the caller\'s identity check does look at the server\'s SPIFFE ID')

  await t.rejects(mtls(port, { ca: gateway.ca }, userService), 'no client certificate: refused at the handshake')
  const plain = await fetch(`http://127.0.0.1:${port}/users`).then((res) => `HTTP ${res.status}`, (err: Error) => (err.cause as NodeJS.ErrnoException | undefined)?.code ?? err.message)
  t.notMatch(plain, /^HTTP /, `plain HTTP on PORT gets no HTTP answer (${plain})`)

  // The admin port: plain HTTP, no certificate.
  const metrics = await fetch(`http://127.0.0.1:${adminPort}/metrics`)
  t.equal(metrics.status, 200)
  t.match(await metrics.text(), /^reg_health_status\{/m, 'the plugins\' series, over plain HTTP')
  const health = await fetch(`http://127.0.0.1:${adminPort}/health`)
  t.equal(health.status, 200)
  t.match(await health.json(), { status: 'passing', checks: { database: { status: 'passing' } } }, 'the detailed /health')
  const publicHealth = await mtls(port, gateway, userService, 'GET', '/health')
  t.same(JSON.parse(publicHealth.body), { status: 'passing' }, 'the public /health (behind mTLS) gives the verdict only')
  t.equal((await mtls(port, gateway, userService, 'GET', '/metrics')).status, 404, 'and /metrics is not on the public port')

  // Intentions: a deny turns the gateway's calls into coded 403s; deleting it restores them.
  const res = await fetch(`${agent.url}/v1/connect/intentions`, { method: 'POST', body: JSON.stringify({ SourceName: 'gateway', DestinationName: 'user-service', Action: 'deny' }) })
  const { ID } = await res.json() as { ID: string }
  const deadline = Date.now() + 5000
  let denied = await mtls(port, gateway, userService)
  while (denied.status !== 403 && Date.now() < deadline) denied = await mtls(port, gateway, userService)
  t.equal(denied.status, 403, 'denied within 5 s (a bound that proves it happens, not a figure)')
  t.match(JSON.parse(denied.body), { statusCode: 403, code: 'FST_REG_CONNECT_FORBIDDEN' })
  await fetch(`${agent.url}/v1/connect/intentions/${ID}`, { method: 'DELETE' })
  let allowed = await mtls(port, gateway, userService)
  while (allowed.status !== 200 && Date.now() < deadline + 5000) allowed = await mtls(port, gateway, userService)
  t.equal(allowed.status, 200, 'allowed again once the intention is deleted')

  server.child.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null }, 'a graceful shutdown exits 0')
  t.same(await serviceUntil(agent.url, 'user-service', (e) => e.length === 0), [], 'deregistered')
  t.equal(server.stderr(), '')
})

t.test('REG_CONNECT=true with no agent to issue a certificate: a failed start, exit 1, not a hang', async (t) => {
  const [port, dead] = await freePorts(2) as [number, number]
  const server = startServer(t, { PORT: String(port), CONSUL_HTTP_ADDR: `127.0.0.1:${dead}`, USERS_DB: ':memory:', REG_CONNECT: 'true', LOG_LEVEL: 'warn' })
  // connectNative's readyTimeout (30 s) bounds it; tap's timeout for this file is longer.
  t.same(await server.exited, { code: 1, signal: null })
  t.match(server.logs().find((r) => r.msg === 'could not start'), { level: 60, err: { code: 'FST_REG_CONNECT_NOT_READY' } })
})
