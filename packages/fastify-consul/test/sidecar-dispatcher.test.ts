import t from 'tap'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { request, fetch as undiciFetch } from 'undici'
import { freePorts } from '@reg/testkit'
import { SidecarUpstreams } from '../src/discovery/dispatch/sidecar-dispatcher.js'
import { Deadline, runWithDeadline } from '../src/discovery/dispatch/deadline.js'
import { normalizeOptions } from '../src/options.js'

// The dispatcher of `fastify.consul.upstream(name)`: one local target (the sidecar's upstream port),
// played here by a plain HTTP server, as the sidecar's local side is plain HTTP. What the real built-in
// proxy does is in connect-sidecar.test.ts.

const seen: IncomingHttpHeaders[] = []
const server = createServer((req, res) => {
  seen.push(req.headers)
  if (req.url === '/slow') return // never answers: the deadline must end it
  req.resume()
  req.on('end', () => res.end(JSON.stringify({ path: req.url })))
})
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
t.teardown(() => { server.closeAllConnections(); server.close() })
const port = (server.address() as AddressInfo).port
const [deadPort] = await freePorts(1) as [number]
const other = createServer((_req, res) => res.end('{"dc":"dc2"}'))
await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve))
t.teardown(() => { other.closeAllConnections(); other.close() })
const otherPort = (other.address() as AddressInfo).port

function upstreams (deadline?: number | string): SidecarUpstreams {
  const settings = normalizeOptions({
    service: { name: 'gateway' },
    connect: { sidecar: { upstreams: [{ destinationName: 'users', localBindPort: port }, { destinationName: 'gone', localBindPort: deadPort }, { destinationName: 'users', localBindPort: otherPort, datacenter: 'dc2' }, { destinationName: 'v6', localBindPort: otherPort, localBindAddress: '::1' }] } }
  }).sidecar
  return new SidecarUpstreams(settings, deadline)
}

t.test('sends to the local port whatever the origin names; the same options give the same dispatcher', async (t) => {
  const set = upstreams()
  t.teardown(() => set.close())
  const users = set.get('users')
  t.equal(users.origin, `http://127.0.0.1:${port}`)
  t.equal(users.service, 'users')
  t.equal(set.get('users'), users, 'shared: its kept-alive connections are reused')
  t.equal(set.get('v6').origin, `http://[::1]:${otherPort}`, 'an IPv6 bind address in brackets')
  const dc2 = set.get('users', { datacenter: 'dc2' })
  t.equal(dc2.origin, `http://127.0.0.1:${otherPort}`, 'the upstream registered for dc2')
  t.same(await (await request('http://users/', { dispatcher: dc2 })).body.json(), { dc: 'dc2' })
  t.not(set.get('users', { deadline: '1s' }), users, 'another deadline: another dispatcher')
  const res = await request('http://users/list?x=1', { dispatcher: users })
  t.same(await res.body.json(), { path: '/list?x=1' })
  t.equal(seen.at(-1)!['x-envoy-expected-rq-timeout-ms'], undefined, 'no deadline, no header')
  const posted = await request('http://users/p', { dispatcher: users, method: 'POST', body: 'hello' })
  t.equal(posted.statusCode, 200, 'a body is sent (callbacks pass through to the caller\'s handler)')
  await posted.body.dump()
  const viaFetch = await undiciFetch('http://users/f', { dispatcher: users })
  t.same(await viaFetch.json(), { path: '/f' }, 'fetch() speaks the newer handler API; it works too')
})

t.test('deadlines: the option, the inherited one and the header travel on; an expired one fails coded', async (t) => {
  const set = upstreams('2s')
  t.teardown(() => set.close())
  const users = set.get('users')
  await (await request('http://users/a', { dispatcher: users })).body.dump()
  const sent = Number(seen.at(-1)!['x-envoy-expected-rq-timeout-ms'])
  t.ok(sent > 1900 && sent <= 2000, `the option's budget travels: ${sent}`)
  await runWithDeadline(Deadline.in(500), async () => { await (await request('http://users/b', { dispatcher: users })).body.dump() })
  t.ok(Number(seen.at(-1)!['x-envoy-expected-rq-timeout-ms']) <= 500, 'the request being handled passes its earlier deadline on')
  await t.rejects(runWithDeadline(Deadline.in(1), async () => request('http://users/c', { dispatcher: users })), { code: 'FST_REG_DISCOVERY_DEADLINE_EXCEEDED' }, 'no try starts with nothing left')
  const slow = set.get('users', { deadline: 150 })
  await t.rejects(request('http://users/slow', { dispatcher: slow }), { code: 'FST_REG_DISCOVERY_DEADLINE_EXCEEDED', statusCode: 504 }, 'a hung answer ends at the deadline')
  const none = upstreams().get('users')
  t.teardown(() => none.close())
  await t.rejects(request('http://users/slow', { dispatcher: none, headers: { 'x-envoy-expected-rq-timeout-ms': '150' } }), { code: 'FST_REG_DISCOVERY_DEADLINE_EXCEEDED' }, 'the request\'s own header is a deadline too')
  await t.rejects(request('http://users/d', { dispatcher: none, headers: { 'x-envoy-expected-rq-timeout-ms': '1' } }), { code: 'FST_REG_DISCOVERY_DEADLINE_EXCEEDED' }, 'too little left to start')
})

t.test('failures: a sidecar that is down is a coded 502, not retried; the caller\'s abort stays its own', async (t) => {
  const set = upstreams()
  t.teardown(() => set.close())
  const err = await request('http://gone/x', { dispatcher: set.get('gone') }).catch((e: unknown) => e) as { code: string, statusCode: number, cause: { code: string } }
  t.equal(err.code, 'FST_REG_CONNECT_UPSTREAM_FAILED')
  t.equal(err.statusCode, 502)
  t.equal(err.cause.code, 'ECONNREFUSED', 'undici\'s error is the cause')
  const broken = new Readable({ read () { this.destroy(new Error('the body broke')) } })
  const bodyErr = await request('http://users/b', { dispatcher: set.get('users'), method: 'POST', body: broken }).catch((e: unknown) => e) as { code: string, cause: Error }
  t.equal(bodyErr.code, 'FST_REG_CONNECT_UPSTREAM_FAILED', 'an error without a code (the caller\'s body broke) is coded too')
  t.equal(bodyErr.cause.message, 'the body broke')
  const before = seen.length
  const aborted = new AbortController()
  const pending = request('http://users/slow', { dispatcher: set.get('users'), signal: aborted.signal })
  setTimeout(() => aborted.abort(), 50)
  await t.rejects(pending, { name: 'AbortError' }, 'an abort is not a sidecar failure')
  t.equal(seen.length, before + 1, 'one try only')
})

t.test('bad options and unknown names are coded; close() and destroy() end a dispatcher, which is then forgotten', async (t) => {
  const set = upstreams()
  t.throws(() => set.get('users', { deadline: 'soon' }), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /upstream\("users"\)\.deadline/ })
  t.throws(() => set.get('users', { datacenter: 'dc1', retries: 2 } as never), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /upstream\("users"\)\.retries/ })
  t.throws(() => set.get(42 as never), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /upstream\(name\)/ })
  t.throws(() => set.get('billing'), { code: 'FST_REG_CONNECT_UNKNOWN_UPSTREAM' })
  const users = set.get('users')
  t.throws(() => users.dispatch({ path: '/', method: 'GET' }, null as never), { code: 'UND_ERR_INVALID_ARG' })
  await new Promise<void>((resolve) => users.close(resolve))
  await t.rejects(request('http://users/', { dispatcher: users }), { code: 'FST_REG_CONNECT_UPSTREAM_CLOSED' })
  t.not(set.get('users'), users, 'a closed dispatcher is forgotten: the next call gets a new one')
  const a = set.get('users')
  await new Promise<void>((resolve) => a.destroy(resolve))
  const b = set.get('users')
  await new Promise<void>((resolve) => b.destroy(null, resolve))
  const c = set.get('users')
  await c.destroy()
  set.get('users')
  await set.close()
})
