import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import userService from '../src/app.js'
import type { Teardown } from './fixtures/app.js'

// What clients and operators see when things go wrong outside the service: a locked database, a client
// that hangs up. The app runs with a real logger so that the tests can read what it logged, and where.

type LogRecord = Record<string, unknown> & { level: number, msg: string }

async function appWithLogs (t: Teardown, dbPath: string): Promise<{ app: FastifyInstance, logs: LogRecord[] }> {
  const logs: LogRecord[] = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { logs.push(JSON.parse(line) as LogRecord) } } } })
  t.teardown(() => app.close())
  await app.register(userService, { dbPath, consul: { address: '127.0.0.1:1' }, consulKv: false, register: false, health: { underPressure: { maxEventLoopDelay: 0 } } })
  await app.ready()
  return { app, logs }
}

async function tempDir (t: Teardown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'user-service-failures-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

t.test('a locked database: 503 FST_REG_USERS_UNAVAILABLE with Retry-After; the driver error only in the log', async (t) => {
  const path = join(await tempDir(t), 'users.db')
  const { app, logs } = await appWithLogs(t, path)
  const ok = await app.inject({ method: 'POST', url: '/users', payload: { name: 'Ada', email: 'ada@example.com' } })
  t.equal(ok.statusCode, 201, 'negative control: the same request succeeds while nobody holds the lock')

  // Another process's writer holds the write lock past the app's busy timeout (2 s).
  const other = new Database(path)
  t.teardown(() => other.close())
  other.exec('BEGIN IMMEDIATE')
  t.teardown(() => { if (other.inTransaction) other.exec('ROLLBACK') })
  const res = await app.inject({ method: 'POST', url: '/users', payload: { name: 'Grace', email: 'grace@example.com' } })
  other.exec('ROLLBACK')

  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '1')
  t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'statusCode'])
  t.match(res.json(), { statusCode: 503, code: 'FST_REG_USERS_UNAVAILABLE', error: 'Service Unavailable' })
  t.notMatch(res.body, /SQLITE|locked|sqlite/i, "nothing of the driver's code or message reaches the client")

  const logged = logs.find((r) => r.msg === 'users database unavailable')
  t.match(logged, { level: 50, err: { code: 'SQLITE_BUSY', message: 'database is locked' } }, 'the operator gets the driver error')
  t.equal((await app.inject({ method: 'POST', url: '/users', payload: { name: 'Grace', email: 'grace@example.com' } })).statusCode, 201, 'a retry after the lock is released succeeds')
})

/** Sends `request` on a raw socket to `app`, then hangs up after `afterMs` without reading the answer. */
async function hangUp (app: FastifyInstance, request: string, afterMs: number): Promise<void> {
  const { port } = app.server.address() as AddressInfo
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write(request)
  await new Promise((resolve) => setTimeout(resolve, afterMs))
  socket.destroy()
}

t.test('a client that hangs up mid-request is logged once at info as 499, not as a server error', async (t) => {
  const { app, logs } = await appWithLogs(t, ':memory:')
  await app.listen({ host: '127.0.0.1', port: 0 })

  await hangUp(app, 'POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":', 100)
  await new Promise((resolve) => setTimeout(resolve, 200))
  const aborted = logs.filter((r) => r.statusCode === 499)
  t.equal(aborted.length, 1, 'one line says what happened')
  t.match(aborted[0], { level: 30, msg: 'client closed the connection before the response was complete' })
  t.same(logs.filter((r) => r.level >= 40), [], 'nothing at warn or above')
  t.notOk(logs.some((r) => (r.res as { statusCode?: number } | undefined)?.statusCode === 500), 'no 500')

  // Negative control: a complete request is not mistaken for an abort.
  const { port } = app.server.address() as AddressInfo
  const res = await fetch(`http://127.0.0.1:${port}/users`)
  await res.arrayBuffer()
  t.equal(logs.filter((r) => r.statusCode === 499).length, 1)
})
