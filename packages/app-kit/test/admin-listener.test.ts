import { once } from 'node:events'
import { connect } from 'node:net'
import Fastify from 'fastify'
import t from 'tap'
import { openAdminListener } from '../src/admin-listener.js'
import { CONNECTION_TIMEOUT, KEEP_ALIVE_TIMEOUT, REQUEST_TIMEOUT } from '../src/index.js'

// The admin listener on its own, in this process: bound before its routes exist (so its port can be
// advertised), 503 until it is started, then Fastify's; closed for good. serve.test.ts runs it inside
// the process around an app.

const timeouts = { keepAliveTimeout: KEEP_ALIVE_TIMEOUT, requestTimeout: REQUEST_TIMEOUT, connectionTimeout: CONNECTION_TIMEOUT }

function logger (): { lines: Array<Record<string, unknown>>, log: ReturnType<typeof Fastify>['log'] } {
  const lines: Array<Record<string, unknown>> = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } } } })
  return { lines, log: app.log }
}

async function refused (port: number, host = '127.0.0.1'): Promise<boolean> {
  const socket = connect(port, host)
  // events.once rejects on 'error': the refusal arrives as the rejection.
  const outcome = await once(socket, 'connect').then(() => 'open', (err: NodeJS.ErrnoException) => err.code)
  socket.destroy()
  return outcome === 'ECONNREFUSED'
}

t.test('bound at once with the OS\'s port; 503 until started; then the routes registered on it', async (t) => {
  const { lines, log } = logger()
  const admin = await openAdminListener({ port: 0, host: '127.0.0.1', logger: log, timeouts })
  t.teardown(() => admin.close())
  t.ok(admin.port > 0, 'the real port, known before any route exists')
  const base = `http://127.0.0.1:${admin.port}`

  const early = await fetch(`${base}/metrics`)
  t.equal(early.status, 503, 'not started yet: 503, not a hang and not an unready router')
  t.equal(early.headers.get('retry-after'), '1')
  t.same(await early.json(), { statusCode: 503, error: 'Service Unavailable', message: 'starting' })

  admin.server.get('/metrics', async () => 'metrics here')
  await admin.start()
  const res = await fetch(`${base}/metrics`)
  t.equal(res.status, 200)
  t.equal(await res.text(), 'metrics here')
  const missing = await fetch(`${base}/users`)
  t.equal(missing.status, 404, 'only what was registered on it')
  await missing.arrayBuffer()
  t.match(lines.find((l) => l.msg === 'admin listener ready'), { listener: 'admin', url: base })

  // The public port's timeouts apply here too.
  const raw = admin.server.server as import('node:http').Server
  t.equal(raw.keepAliveTimeout, KEEP_ALIVE_TIMEOUT)
  t.equal(raw.requestTimeout, REQUEST_TIMEOUT)
  t.equal(raw.timeout, CONNECTION_TIMEOUT)

  const closing = admin.close()
  t.equal(admin.close(), closing, 'close() is idempotent')
  await closing
  t.ok(await refused(admin.port), 'closed: the port refuses connections')
})

t.test('close() runs the admin instance\'s hooks (the live view ends its streams there), then frees the port', async (t) => {
  const { log } = logger()
  const admin = await openAdminListener({ port: 0, host: '127.0.0.1', logger: log, timeouts })
  const hooks: string[] = []
  admin.server.addHook('preClose', async () => { hooks.push('preClose') })
  admin.server.addHook('onClose', async () => { hooks.push('onClose') })
  await admin.start()
  await admin.close()
  t.same(hooks, ['preClose', 'onClose'])
  t.ok(await refused(admin.port))
})

t.test('a port in use is refused at once, with the socket\'s own error', async (t) => {
  const { log } = logger()
  const first = await openAdminListener({ port: 0, host: '127.0.0.1', logger: log, timeouts })
  t.teardown(() => first.close())
  await t.rejects(openAdminListener({ port: first.port, host: '127.0.0.1', logger: log, timeouts }), { code: 'EADDRINUSE' })
})

t.test('an IPv6 host is logged as a URL, in brackets', async (t) => {
  const { lines, log } = logger()
  const admin = await openAdminListener({ port: 0, host: '::1', logger: log, timeouts })
  t.teardown(() => admin.close())
  await admin.start()
  t.match(lines.find((l) => l.msg === 'admin listener ready'), { url: `http://[::1]:${admin.port}` })
  const res = await fetch(`http://[::1]:${admin.port}/nothing`)
  t.equal(res.status, 404)
  await res.arrayBuffer()
})
