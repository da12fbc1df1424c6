import { mkdtemp, rm } from 'node:fs/promises'
import type { IncomingHttpHeaders } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePorts, serviceUntil, startConsul } from '@reg/testkit'
import t from 'tap'
import { fakeUpstream } from './fixtures/consul.js'
import { exchange, rawConnection } from './fixtures/raw-http.js'
import { GATEWAY_JS, startServer, USER_SERVICE_JS, whileRunning, type ServerProcess } from './fixtures/server.js'

// The built gateway as a real process, as an HTTP/1.1 intermediary (RFC 9110 §7.6, RFC 9112 §3.2):
// in front of an echo upstream registered in Consul, which answers with the request it received, and
// in front of real user-service processes. Requests go over bare sockets, exactly as written here, and
// each case compares what the client sent (before) with what the upstream received (after).

const agent = await startConsul({ t })

interface Echoed {
  method: string
  url: string
  headers: IncomingHttpHeaders
  /** How many Host lines the upstream received. */
  hosts: number
  body: string
}

/** Hop-by-hop headers the echo adds to its answer when asked (`?hop`), for the response direction. */
const HOP_RESPONSE_HEADERS = {
  connection: 'close, x-hop',
  'keep-alive': 'timeout=5',
  'x-hop': 'for the gateway only',
  'proxy-authenticate': 'Basic realm="upstream-proxy"',
  'proxy-connection': 'close',
  trailer: 'x-checksum',
  upgrade: 'h2c',
  'x-end-to-end': 'kept'
}

let echoed = 0
const echo = await fakeUpstream(t, agent.url, 'echo', (req, res) => {
  echoed++
  let body = ''
  req.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => {
    const query = new URL(req.url!, 'http://echo').searchParams
    const hosts = req.rawHeaders.filter((_, i) => i % 2 === 0 && req.rawHeaders[i]!.toLowerCase() === 'host').length
    const answer = JSON.stringify({ method: req.method!, url: req.url!, headers: req.headers, hosts, body } satisfies Echoed)
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json', ...(query.has('hop') ? HOP_RESPONSE_HEADERS : {}) })
      res.end(answer)
    }, Number(query.get('delay') ?? 0))
  })
})

/** A gateway process in front of `upstream`, once Consul lists it passing (so it sees its upstream). */
async function startGateway (upstream: string, serviceId: string, others: ServerProcess[] = []): Promise<{ gateway: ServerProcess, port: number }> {
  const [port] = await freePorts(1) as [number]
  const gateway = startServer(t, GATEWAY_JS, { CONSUL_HTTP_ADDR: agent.address, PORT: String(port), SERVICE_ID: serviceId, UPSTREAM_SERVICE: upstream })
  await whileRunning([gateway, ...others], serviceUntil(agent.url, 'gateway', (e) => e.some((x) => x.Service.ID === serviceId), { passing: true }))
  return { gateway, port }
}

const { gateway, port } = await startGateway('echo', 'gateway-echo')

/** GET through the gateway with extra raw header lines; the request as the echo received it. */
async function through (target: string, headerLines: string[]): Promise<Echoed> {
  const res = await exchange(port, `GET ${target} HTTP/1.1\r\nHost: api.example.com\r\n${headerLines.map((l) => `${l}\r\n`).join('')}\r\n`)
  if (res.status !== 200) throw new Error(`expected 200, got ${res.status}: ${res.body}`)
  return JSON.parse(res.body) as Echoed
}

t.test('negative control: sent straight to the echo, every header arrives, and the echo sends hop-by-hop ones back', async (t) => {
  const direct = await exchange(echo.port, 'GET /users?hop HTTP/1.1\r\nHost: echo\r\nTE: gzip\r\nTrailer: x\r\nProxy-Authorization: Basic eA==\r\nX-Real-IP: 6.6.6.6\r\n\r\n')
  t.match(JSON.parse(direct.body), { headers: { te: 'gzip', trailer: 'x', 'proxy-authorization': 'Basic eA==', 'x-real-ip': '6.6.6.6' } })
  t.match(direct.headers, { 'keep-alive': ['timeout=5'], 'x-hop': ['for the gateway only'], 'proxy-authenticate': [/realm/], upgrade: ['h2c'], trailer: ['x-checksum'] })
})

t.test('request: every hop-by-hop header of RFC 9110 §7.6.1 stops at the gateway; TE keeps only trailers', async (t) => {
  const seen = await through('/users', [
    'Connection: X-Custom-Hop', 'X-Custom-Hop: 1', 'X-End-To-End: kept',
    'Keep-Alive: 300', 'TE: gzip, trailers', 'Trailer: X-Checksum', 'Upgrade: h2c',
    'Proxy-Connection: keep-alive', 'Proxy-Authorization: Basic cHJveHk6c2VjcmV0'
  ])
  for (const name of ['x-custom-hop', 'keep-alive', 'trailer', 'upgrade', 'proxy-connection', 'proxy-authorization']) {
    t.notOk(name in seen.headers, `${name} is not forwarded`)
  }
  t.equal(seen.headers.te, 'trailers', 'TE: gzip, trailers → TE: trailers')
  t.equal(seen.headers['x-end-to-end'], 'kept', 'end-to-end headers pass')
  t.equal(seen.headers.connection, 'keep-alive', "Connection is the gateway's own, about its socket to the upstream")
  t.notOk('te' in (await through('/users', ['TE: gzip'])).headers, 'TE without trailers is dropped')
})

t.test('request: Keep-Alive or Upgrade that Connection does not list, and a real Upgrade request, are proxied, not refused', async (t) => {
  // undici refuses both headers, which made the gateway answer 502 (and log it at error with a stack).
  t.notOk('keep-alive' in (await through('/users', ['Keep-Alive: 300'])).headers)
  t.notOk('upgrade' in (await through('/users', ['Upgrade: h2c'])).headers)
  // No protocol change is offered: Node serves it as an ordinary request (RFC 9110 §7.8 lets a server ignore Upgrade).
  const upgrade = await through('/users', ['Connection: Upgrade', 'Upgrade: websocket'])
  t.notOk('upgrade' in upgrade.headers)
})

t.test('request: Forwarded gets the gateway\'s element appended, X-Forwarded-* are set, X-Real-IP is dropped', async (t) => {
  const plain = await through('/users', [])
  t.equal(plain.headers.forwarded, 'for=127.0.0.1;host=api.example.com;proto=http')
  t.match(plain.headers, { 'x-forwarded-for': '127.0.0.1', 'x-forwarded-host': 'api.example.com', 'x-forwarded-proto': 'http' })

  const spoofed = await through('/users', [
    'Forwarded: for=203.0.113.9;host=trusted.example', 'Forwarded: for=198.51.100.1',
    'X-Forwarded-For: 203.0.113.9', 'X-Forwarded-Host: trusted.example', 'X-Forwarded-Proto: https', 'X-Real-IP: 203.0.113.9'
  ])
  t.equal(spoofed.headers.forwarded, 'for=203.0.113.9;host=trusted.example, for=198.51.100.1, for=127.0.0.1;host=api.example.com;proto=http',
    "the client's elements stay, the last one is the gateway's: an upstream trusting its proxy reads the last")
  t.equal(spoofed.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1', 'the client address is appended')
  t.match(spoofed.headers, { 'x-forwarded-host': 'api.example.com', 'x-forwarded-proto': 'http' }, 'single values are replaced, not trusted')
  t.notOk('x-real-ip' in spoofed.headers, 'X-Real-IP from a client is dropped')
  t.equal(spoofed.headers.host, 'echo', 'Host is the upstream service')
})

t.test('response: hop-by-hop headers from the upstream stop at the gateway; its Connection: close does not close the client', async (t) => {
  const connection = await rawConnection(port)
  t.teardown(() => connection.close())
  for (let i = 0; i < 2; i++) {
    connection.send('GET /users?hop HTTP/1.1\r\nHost: api.example.com\r\n\r\n')
    const res = await connection.response()
    t.equal(res.status, 200, `request ${i + 1} on one connection`)
    for (const name of ['x-hop', 'proxy-authenticate', 'proxy-connection', 'trailer', 'upgrade']) t.notOk(name in res.headers, `${name} is not passed on`)
    t.same(res.headers['keep-alive'], ['timeout=72'], "Keep-Alive is the gateway's own, not the upstream's timeout=5")
    t.same(res.headers.connection, ['keep-alive'], "Connection is the gateway's own, not the upstream's close")
    t.same(res.headers['x-end-to-end'], ['kept'])
  }
})

t.test('Expect: 100-continue is answered by the gateway and not forwarded; other expectations get 417', async (t) => {
  const connection = await rawConnection(port)
  t.teardown(() => connection.close())
  const body = '{"name":"Ada"}'
  // As curl does: headers first, the body only after 100 Continue.
  connection.send(`POST /users HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`)
  t.equal(await connection.interim(), 100, '100 Continue before the body was sent')
  connection.send(body)
  const res = await connection.response()
  t.equal(res.status, 200)
  const seen = JSON.parse(res.body) as Echoed
  t.notOk('expect' in seen.headers, 'Expect is not forwarded (undici refuses it, which made this a 502)')
  t.same([seen.method, seen.body], ['POST', body], 'the body arrived whole')

  const before = echoed
  const refused = await exchange(port, 'POST /users HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 2\r\nExpect: teapot\r\n\r\n{}')
  t.equal(refused.status, 417, 'an expectation the gateway cannot meet (RFC 9110 §10.1.1)')
  t.equal(echoed, before, 'and nothing reached the upstream')
})

t.test('absolute-form targets are proxied by their path; their authority is the host (RFC 9112 §3.2.2)', async (t) => {
  const res = await exchange(port, 'GET http://API.example.com:8443/users/7?b=2&a=1 HTTP/1.1\r\nHost: ignored.example\r\n\r\n')
  t.equal(res.status, 200)
  const seen = JSON.parse(res.body) as Echoed
  t.equal(seen.url, '/users/7?b=2&a=1', 'origin-form, query kept')
  t.match(seen.headers, { host: 'echo', 'x-forwarded-host': 'api.example.com:8443', forwarded: /host="api\.example\.com:8443"/ })

  const traversal = await exchange(port, 'GET http://api.example.com/users/../admin HTTP/1.1\r\nHost: api.example.com\r\n\r\n')
  t.equal(traversal.status, 400, 'a ../ in the absolute form cannot leave /users either')
  const other = await exchange(port, 'GET http://api.example.com/admin HTTP/1.1\r\nHost: api.example.com\r\n\r\n')
  t.equal(other.status, 404, 'nor reach a path the gateway does not proxy')
})

t.test('two Host lines: 400 FST_REG_GATEWAY_DUPLICATE_HOST before anything is proxied', async (t) => {
  const before = echoed
  for (const target of ['/users', '/health', '/nowhere']) {
    const res = await exchange(port, `GET ${target} HTTP/1.1\r\nHost: api.example.com\r\nHost: evil.example\r\n\r\n`)
    t.equal(res.status, 400, target)
    t.match(JSON.parse(res.body), { code: 'FST_REG_GATEWAY_DUPLICATE_HOST' }, target)
  }
  t.equal(echoed, before, 'the upstream saw none of them')
  t.equal((await exchange(port, 'GET /users HTTP/1.1\r\n\r\n')).status, 400, 'no Host at all: Node answers 400 itself (requireHostHeader)')
  t.equal((await through('/users', [])).hosts, 1, 'negative control: one Host line is proxied, and the upstream gets one')
})

t.test('a client that hangs up is logged at info as 499; none of the cases above is logged at error', async (t) => {
  const midBody = await rawConnection(port)
  midBody.send('POST /users HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":')
  await new Promise((resolve) => setTimeout(resolve, 100))
  midBody.close()
  const waiting = await rawConnection(port)
  waiting.send('GET /users?delay=500 HTTP/1.1\r\nHost: api.example.com\r\n\r\n')
  await new Promise((resolve) => setTimeout(resolve, 100))
  waiting.close()
  // The echo answers the waiting request after 500 ms; the gateway's log line comes once it knows.
  await new Promise((resolve) => setTimeout(resolve, 800))

  const logs = gateway.logs()
  const aborts = logs.filter((r) => r.statusCode === 499)
  t.equal(aborts.length, 2, 'one 499 line for each hung-up request')
  t.ok(aborts.every((r) => r.level === 30 && r.msg === 'client closed the connection before the response was complete'))
  t.same(logs.filter((r) => (r.level as number) >= 50), [], 'nothing logged at error level in this file')
  t.notOk(logs.some((r) => (r.res as { statusCode?: number } | undefined)?.statusCode === 500), 'no 500')
})

t.test('in front of real user-service processes: Expect, absolute-form, Keep-Alive, paging and two Hosts', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gateway-intermediary-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const [replicaPort] = await freePorts(1) as [number]
  const replica = startServer(t, USER_SERVICE_JS, { CONSUL_HTTP_ADDR: agent.address, PORT: String(replicaPort), SERVICE_ID: 'users-real-1', SERVICE_NAME: 'users-real', USERS_DB: join(dir, 'users.db') })
  await whileRunning([replica], serviceUntil(agent.url, 'users-real', (e) => e.length === 1, { passing: true }))
  const { gateway: real, port: realPort } = await startGateway('users-real', 'gateway-real', [replica])

  const connection = await rawConnection(realPort)
  t.teardown(() => connection.close())
  for (const name of ['Ada', 'Grace']) {
    const body = JSON.stringify({ name, email: `${name.toLowerCase()}@example.com` })
    connection.send(`POST /users HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`)
    t.equal(await connection.interim(), 100)
    connection.send(body)
    t.equal((await connection.response()).status, 201, `${name} created with Expect: 100-continue`)
  }

  const page = await exchange(realPort, 'GET http://api.example.com/users?limit=1 HTTP/1.1\r\nHost: api.example.com\r\nKeep-Alive: 300\r\n\r\n')
  t.equal(page.status, 200, 'absolute-form with a Keep-Alive that Connection does not list')
  const [ada] = JSON.parse(page.body) as Array<{ id: string, name: string }>
  t.equal(ada!.name, 'Ada')
  t.same(page.headers.link, [`</users?limit=1&after=${ada!.id}>; rel="next"`], 'the Link header passes through: it is valid at the gateway too')
  const next = await exchange(realPort, `GET /users?limit=1&after=${ada!.id} HTTP/1.1\r\nHost: api.example.com\r\n\r\n`)
  t.same(JSON.parse(next.body).map((u: { name: string }) => u.name), ['Grace'])

  const duplicate = await exchange(realPort, 'GET /users HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n')
  t.match([duplicate.status, JSON.parse(duplicate.body)], [400, { code: 'FST_REG_GATEWAY_DUPLICATE_HOST' }])
  t.same(real.logs().filter((r) => (r.level as number) >= 50), [], 'nothing logged at error level')
  t.same(replica.logs().filter((r) => (r.level as number) >= 50), [])
})
