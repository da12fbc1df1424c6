import { EventEmitter, once } from 'node:events'
import { connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { startConsul } from '@reg/testkit'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { request } from 'undici'
import type { GatewayOptions } from '../src/app.js'
import type { DashboardSnapshot } from '../src/dashboard-snapshot.js'
import { buildGateway, instancesBecome, until, type ErrorBody } from './fixtures/app.js'
import { registerInstance } from './fixtures/consul.js'

// The live view as a hostile network sees it (issue #31, item 4): security headers, DNS rebinding, a flood
// of event streams, readers that stop reading, and many viewers at once. Each test has its own upstream
// name on one real Consul agent; instances are registered with no process behind them (the view only
// shows them, and no test here proxies a request).

const agent = await startConsul({ t })
const consul = { address: agent.address }

async function liveView (name: string, dashboard: GatewayOptions['dashboard']): Promise<{ app: FastifyInstance, port: number, base: string }> {
  const app = await buildGateway(t, { upstream: name, consul, register: false, dashboard })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as AddressInfo).port
  return { app, port, base: `http://127.0.0.1:${port}/_gateway` }
}

/** An open event stream: its status, and its snapshots as they arrive. */
async function openStream (url: string, headers: Record<string, string> = {}): Promise<{ status: number, body: string, headers: Record<string, unknown>, next: () => Promise<DashboardSnapshot>, close: () => void }> {
  const res = await request(url, { headers: { accept: 'text/event-stream', ...headers } })
  if (res.statusCode !== 200) return { status: res.statusCode, body: await res.body.text(), headers: res.headers, next: async () => { throw new Error('no stream') }, close: () => {} }
  let buffer = ''
  const iterator = res.body[Symbol.asyncIterator]()
  async function next (): Promise<DashboardSnapshot> {
    for (;;) {
      const end = buffer.indexOf('\n\n')
      if (end >= 0) {
        const message = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        if (/^event: snapshot$/m.test(message)) return JSON.parse(message.split('\n').find((l) => l.startsWith('data:'))!.slice(5)) as DashboardSnapshot
        continue
      }
      const { value, done } = await iterator.next()
      if (done === true) throw new Error('the stream ended')
      buffer += String(value)
    }
  }
  return { status: 200, body: '', headers: res.headers, next, close: () => { res.body.destroy() } }
}

const SECURITY_HEADERS = {
  'content-security-policy': /(^|; )default-src 'self'(;|$)/,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer'
}

t.test('every answer of the view has a strict CSP, no framing, nosniff and no referrer', async (t) => {
  const { base } = await liveView('headers', true)
  for (const path of ['/', '/live-view.js', '/live-view.css']) {
    const res = await request(`${base}${path}`)
    await res.body.dump()
    t.match(res.headers, SECURITY_HEADERS, `GET ${path} (${res.statusCode})`)
    t.match(res.headers['content-security-policy'], /frame-ancestors 'none'/)
    t.notMatch(res.headers['content-security-policy'], /unsafe-inline|unsafe-eval/)
  }
  const bare = await request(base)
  await bare.body.dump()
  t.equal(bare.statusCode, 308, '/_gateway without the slash is sent to /_gateway/, where the page\'s relative URLs resolve')
  t.equal(bare.headers.location, '/_gateway/')
  t.match(bare.headers, SECURITY_HEADERS)
  const stream = await openStream(`${base}/events`)
  t.equal(stream.status, 200)
  t.match(stream.headers, { ...SECURITY_HEADERS, 'content-type': /^text\/event-stream/ }, 'the event stream too')
  stream.close()
  const refused = await request(`${base}/`, { headers: { host: 'evil.example' } })
  await refused.body.dump()
  t.match(refused.headers, SECURITY_HEADERS, 'and a refusal')
})

t.test('DNS rebinding: a Host that is neither loopback nor configured gets 421; allowed ones are served', async (t) => {
  const { base } = await liveView('hosts', { allowedHosts: ['gateway.internal'] })
  for (const host of ['evil.example', 'evil.example:8080', 'gateway.internal.evil.example', '10.1.2.3']) {
    for (const path of ['/', '/events', '/live-view.js']) {
      const res = await request(`${base}${path}`, { headers: { host, accept: 'text/event-stream' } })
      t.equal(res.statusCode, 421, `${host} ${path}`)
      t.equal((await res.body.json() as ErrorBody).code, 'FST_REG_GATEWAY_MISDIRECTED')
    }
  }
  for (const host of ['127.0.0.1:8080', 'localhost:8080', 'gateway.internal:8080', 'GATEWAY.internal']) {
    const res = await request(`${base}/`, { headers: { host } })
    t.equal(res.statusCode, 200, host)
    t.match(await res.body.text(), /<title>gateway · live view<\/title>/)
  }
  const stream = await openStream(`${base}/events`, { host: 'localhost' })
  t.equal(stream.status, 200, 'the stream under an allowed Host')
  stream.close()
  const health = await request(`${base.replace('/_gateway', '')}/health`, { headers: { host: 'evil.example' } })
  await health.body.dump()
  t.not(health.statusCode, 421, 'only the live view checks Host: Consul probes /health by address')
})

t.test('at most maxStreams event streams: the next gets 503 FST_REG_GATEWAY_TOO_MANY_STREAMS, a closed one frees its slot', async (t) => {
  const { base } = await liveView('cap', { maxStreams: 3 })
  const open = await Promise.all([1, 2, 3].map(() => openStream(`${base}/events`)))
  t.same(open.map((s) => s.status), [200, 200, 200])
  for (const s of open) t.equal((await s.next()).service, 'cap', 'each gets its first snapshot at once')
  const fourth = await openStream(`${base}/events`)
  t.equal(fourth.status, 503)
  t.equal((JSON.parse(fourth.body) as ErrorBody).code, 'FST_REG_GATEWAY_TOO_MANY_STREAMS')
  t.equal((await request(`${base}/`)).statusCode, 200, 'the page itself is still served')

  open[0]!.close()
  let again: Awaited<ReturnType<typeof openStream>> | undefined
  await until(() => again?.status === 200, 'a slot freed by a closed stream', 10_000).catch(() => {})
  for (let i = 0; i < 50 && again?.status !== 200; i++) {
    again = await openStream(`${base}/events`)
    if (again.status !== 200) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.equal(again?.status, 200, 'a closed stream\'s slot is taken again')
  for (const s of [...open.slice(1), again!]) s.close()
})

t.test('a reader that stops reading is dropped once its unsent bytes pass maxBufferedBytes', async (t) => {
  const name = 'wide'
  // 10 instances with 20,000-character service ids (Consul takes them, and so does discovery: an id is
  // opaque): ~200 KB a snapshot fills the socket buffers in seconds.
  const ids = Array.from({ length: 10 }, (_, i) => `wide-${i}-${'i'.repeat(20_000)}`)
  for (const [i, id] of ids.entries()) await registerInstance(agent.url, { name, id, port: 1000 + i })
  const { app, port, base } = await liveView(name, { maxStreams: 1, maxBufferedBytes: 64 * 1024 })
  await until(() => app.gateway.watch.all.length === ids.length, 'the watch lists every wide instance')

  let serverSide: Socket | undefined
  app.server.once('connection', (socket: Socket) => { serverSide = socket })
  const paused = connect(port, '127.0.0.1')
  t.teardown(() => { paused.destroy() })
  await once(paused, 'connect')
  // No 'data' listener: the socket reads at most its own buffer, then the kernel's fill up, then Node's.
  paused.write('GET /_gateway/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n')
  await until(() => serverSide !== undefined, 'the paused reader\'s connection')
  const refused = await openStream(`${base}/events`)
  t.equal(refused.status, 503, 'and the only stream slot')

  // Snapshots keep coming, one a second and one per change (a new instance here, every 250 ms): each
  // adds its ~200 KB to the pile, until the pile passes the bound.
  const started = Date.now()
  let next: Awaited<ReturnType<typeof openStream>> | undefined
  for (let i = 0; Date.now() - started < 60_000; i++) {
    next = await openStream(`${base}/events`)
    if (next.status === 200) break
    await registerInstance(agent.url, { name, id: `wide-more-${i}`, port: 2000 + i })
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  t.equal(next?.status, 200, 'the slot was freed: the stream count went back down')
  t.comment(`dropped after ${Date.now() - started} ms`)
  t.ok((await next!.next()).instances.length >= ids.length, 'a reading client is served')
  next!.close()
  t.equal(serverSide!.destroyed, true, 'the server destroyed the paused reader\'s socket: nothing of it stays in memory')
})

t.test('20 viewers at once: no MaxListenersExceededWarning, each gets every change', async (t) => {
  const warnings: Error[] = []
  const onWarning = (warning: Error): void => { warnings.push(warning) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })

  // Negative control: the detector sees a real MaxListenersExceededWarning.
  const control = new EventEmitter()
  for (let i = 0; i < 11; i++) control.on('x', () => {})
  await until(() => warnings.length > 0, 'the control warning')
  t.equal(warnings[0]!.name, 'MaxListenersExceededWarning', 'the detector works')
  warnings.length = 0

  const name = 'crowd'
  await registerInstance(agent.url, { name, id: 'crowd-1', port: 1001 })
  const { app, base } = await liveView(name, true)
  await instancesBecome(app, ['crowd-1'])
  const viewers = await Promise.all(Array.from({ length: 20 }, async () => await openStream(`${base}/events`)))
  t.same(viewers.map((v) => v.status), Array(20).fill(200))
  for (const v of viewers) await v.next()
  // A change reaches every viewer through the one listener the view keeps on the watch.
  await registerInstance(agent.url, { name, id: 'crowd-2', port: 1002 })
  await Promise.all(viewers.map(async (v) => {
    for (;;) if ((await v.next()).instances.length === 2) return
  }))
  t.pass('all 20 saw the new instance')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(warnings.map((w) => `${w.name}: ${w.message}`), [], 'no warning at all')
  for (const v of viewers) v.close()
})
