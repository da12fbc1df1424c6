import { mkdtemp, rm } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { HealthStatus } from '@reg/fastify-health'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { openDatabase } from '../src/db.js'
import { buildApp, type ErrorBody, type UserBody } from './fixtures/app.js'

/**
 * Resolves on the health change to `status`. The deadline timer also keeps the process alive meanwhile:
 * check timers are unref'd by design, and would not.
 */
function becomes (app: FastifyInstance, status: HealthStatus['status'], timeout = 10_000): Promise<HealthStatus> {
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => {
      stop()
      reject(new Error(`health did not become ${status} within ${timeout} ms`))
    }, timeout)
    const stop = app.health.onChange((s) => {
      if (s.status !== status) return
      clearTimeout(deadline)
      stop()
      resolve(s)
    })
  })
}

t.test('every response says which instance answered, errors and 404s included', async (t) => {
  const app = await buildApp(t, { instanceId: 'replica-7', serviceId: 'ignored-for-the-header' })
  for (const url of ['/users', '/users/nope', '/health', '/no-such-route']) {
    t.equal((await app.inject(url)).headers['x-instance-id'], 'replica-7', url)
  }
})

t.test('without an instance id the header is the Consul service id', async (t) => {
  const app = await buildApp(t, { serviceId: 'user-service-a' })
  t.equal((await app.inject('/users')).headers['x-instance-id'], 'user-service-a')
})

t.test('before any Consul registration the header falls back to name and host', async (t) => {
  const app = await buildApp(t, { serviceName: 'users-b' })
  t.equal(app.consul.registration, undefined, 'inject() never registers')
  t.equal((await app.inject('/users')).headers['x-instance-id'], `users-b-${hostname()}`)
})

t.test('/health reports the database check; the routes of both plugins are mounted', async (t) => {
  const app = await buildApp(t)
  const res = await app.inject('/health')
  t.equal(res.statusCode, 200)
  t.match(res.json(), { status: 'passing', checks: { database: { status: 'passing', critical: true } } })
  t.equal((await app.inject('/health/live')).statusCode, 200)
  t.equal(app.health.path, '/health', 'the path the Consul check will probe')
  t.equal(app.consul.state, 'unregistered')
})

t.test('a broken database turns /health critical (503) while liveness stays 200', async (t) => {
  const db = openDatabase(':memory:')
  t.teardown(() => db.close())
  const app = await buildApp(t, { db, databaseCheck: { interval: 20, timeout: 500 } })
  t.equal((await app.inject('/health')).statusCode, 200, 'passing while the database is open')
  const created = await app.inject({ method: 'POST', url: '/users', payload: { name: 'Ada', email: 'ada@example.com' } })
  t.equal(created.statusCode, 201)

  const critical = becomes(app, 'critical')
  db.close()
  await critical

  const health = await app.inject('/health')
  t.equal(health.statusCode, 503)
  t.match(health.json(), { status: 'critical', checks: { database: { status: 'critical', output: /not open/ } } })
  t.equal((await app.inject('/health/live')).statusCode, 200, 'the process is alive; only readiness fails')
  t.match((await app.inject('/users')).json(), { statusCode: 503, code: 'FST_REG_USERS_UNAVAILABLE' }, 'reads fail: unavailable, not a server bug')
  const write = await app.inject({ method: 'POST', url: '/users', payload: { name: 'Grace', email: 'grace@example.com' } })
  t.equal(write.statusCode, 503, 'a database error is not mistaken for a duplicate')
  t.notMatch(write.json<ErrorBody>(), { code: 'FST_REG_USERS_DUPLICATE_EMAIL' })
})

t.test('an injected database is used as is and left open on close', async (t) => {
  const db = openDatabase(':memory:')
  t.teardown(() => db.close())
  const app = await buildApp(t, { db })
  await app.inject({ method: 'POST', url: '/users', payload: { name: 'Ada', email: 'ada@example.com' } })
  t.equal(db.prepare('SELECT count(*) AS n FROM users').pluck().get(), 1, 'the app wrote to the given handle')
  await app.close()
  t.equal(db.open, true, 'only databases the app opened are closed')
})

t.test('dbPath: users persist across instances; the app closes the file it opened', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'user-service-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'users.db')

  const first = await buildApp(t, { dbPath: path })
  const ada = (await first.inject({ method: 'POST', url: '/users', payload: { name: 'Ada', email: 'ada@example.com' } })).json<UserBody>()
  await first.close()

  const second = await buildApp(t, { dbPath: path })
  t.same((await second.inject('/users')).json(), [ada])
  await second.close()

  // A lock left behind by an unclosed handle would make this exclusive transaction wait, then fail.
  const check = new Database(path, { timeout: 0 })
  t.teardown(() => check.close())
  t.equal(check.pragma('journal_mode', { simple: true }), 'wal')
  t.doesNotThrow(() => check.exec('BEGIN EXCLUSIVE; COMMIT'))
})
