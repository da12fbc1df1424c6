import Fastify from 'fastify'
import t from 'tap'
import healthPlugin from '../src/index.js'
import { build, checkStatus, switchable, until } from './fixtures/helpers.js'

t.test('no checks: /health is 200 passing, with a JSON body', async (t) => {
  const app = await build(t)
  const res = await app.inject('/health')
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
  t.strictSame(res.json(), { status: 'passing', draining: false, underPressure: false, pressure: [], checks: {} })
  const live = await app.inject('/health/live')
  t.equal(live.statusCode, 200)
  t.strictSame(live.json(), { status: 'passing' })
})

t.test('200 passing, 429 when only non-critical checks fail, 503 when a critical one does', async (t) => {
  const db = switchable()
  const cache = switchable()
  const app = await build(t, {
    defaultInterval: 10,
    checks: { db: db.fn, cache: { fn: cache.fn, critical: false } }
  })
  const get = async (): Promise<{ code: number, body: Record<string, unknown> }> => {
    const res = await app.inject('/health')
    return { code: res.statusCode, body: res.json() }
  }

  let res = await get()
  t.equal(res.code, 200)
  t.match(res.body, {
    status: 'passing',
    checks: {
      db: { status: 'passing', critical: true, durationMs: Number, checkedAt: String },
      cache: { status: 'passing', critical: false }
    }
  })

  cache.fail('redis: connection refused')
  await until('cache to warn', () => checkStatus(app, 'cache') === 'warning')
  res = await get()
  t.equal(res.code, 429)
  t.match(res.body, { status: 'warning', checks: { cache: { status: 'warning', output: 'redis: connection refused' } } })

  db.fail('db down')
  await until('db to fail', () => checkStatus(app, 'db') === 'critical')
  res = await get()
  t.equal(res.code, 503)
  t.match(res.body, { status: 'critical', checks: { db: { status: 'critical', output: 'db down' }, cache: { status: 'warning' } } })

  db.pass()
  cache.report('passing', 'warmed up')
  await until('both to pass', () => app.health.status().status === 'passing' && checkStatus(app, 'cache') === 'passing')
  res = await get()
  t.equal(res.code, 200)
  t.match(res.body, { checks: { cache: { output: 'warmed up' } } })
})

t.test('the first answer after ready() is already real', async (t) => {
  const app = await build(t, { checks: { db: () => { throw new Error('no database') } } })
  const res = await app.inject('/health')
  t.equal(res.statusCode, 503, 'no optimistic "passing" before the first run')
  t.match(res.json(), { checks: { db: { output: 'no database' } } })
})

t.test('an explicit warning report from a critical check answers 429', async (t) => {
  const app = await build(t, { checks: { replica: async () => ({ status: 'warning', output: 'lag 12s' }) } })
  const res = await app.inject('/health')
  t.equal(res.statusCode, 429)
  t.match(res.json(), { status: 'warning', checks: { replica: { status: 'warning', output: 'lag 12s' } } })
})

t.test('a hung check fails with "timeout after Nms"', async (t) => {
  let signal: AbortSignal | undefined
  const app = await build(t, {
    checks: { hung: { fn: (s) => { signal = s; return new Promise(() => {}) }, timeout: 25 } }
  })
  const res = await app.inject('/health')
  t.equal(res.statusCode, 503)
  t.match(res.json(), { checks: { hung: { status: 'critical', output: 'timeout after 25ms' } } })
  t.equal(signal?.aborted, true, 'the check was told to give up')
})

t.test('a throwing check shows its message, never its stack', async (t) => {
  const app = await build(t, { checks: { db: async () => { throw new Error('ECONNREFUSED 127.0.0.1:5432') } } })
  const res = await app.inject('/health')
  t.equal(res.statusCode, 503)
  t.equal(res.json().checks.db.output, 'ECONNREFUSED 127.0.0.1:5432')
  t.notMatch(res.body, /\bat |\.ts:|\.js:/, 'no stack frames in the body')
})

t.test('details: false sends only { status }', async (t) => {
  const app = await build(t, { details: false, checks: { db: () => { throw new Error('secret internals') } } })
  const res = await app.inject('/health')
  t.equal(res.statusCode, 503)
  t.strictSame(res.json(), { status: 'critical' })
  t.match(app.health.status(), { checks: { db: { output: 'secret internals' } } }, 'the details stay available in-process')
})

t.test('drain(): readiness 503 with draining true, every other route keeps serving', async (t) => {
  const app = await build(t)
  const changes: Array<[string, boolean]> = []
  app.health.onChange((s) => changes.push([s.status, s.draining]))
  app.health.drain()
  app.health.drain()
  const res = await app.inject('/health')
  t.equal(res.statusCode, 503)
  t.match(res.json(), { status: 'critical', draining: true })
  t.equal((await app.inject('/ping')).statusCode, 200)
  t.equal((await app.inject('/health/live')).statusCode, 200, 'draining is not dying')
  t.same(changes, [['critical', true]], 'one change for two drain() calls')
})

t.test('HEAD /health answers the same status codes without a body', async (t) => {
  const db = switchable()
  const app = await build(t, { defaultInterval: 10, checks: { db: db.fn } })
  let res = await app.inject({ method: 'HEAD', url: '/health' })
  t.equal(res.statusCode, 200)
  t.equal(res.body, '')
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
  db.fail()
  await until('db to fail', () => checkStatus(app, 'db') === 'critical')
  res = await app.inject({ method: 'HEAD', url: '/health' })
  t.equal(res.statusCode, 503)
  t.equal(res.body, '')
  res = await app.inject({ method: 'HEAD', url: '/health/live' })
  t.equal(res.statusCode, 200)
  t.equal(res.body, '')
})

t.test('liveness does not depend on checks or on draining', async (t) => {
  const app = await build(t, { checks: { db: () => { throw new Error('down') } } })
  t.equal((await app.inject('/health')).statusCode, 503)
  t.equal((await app.inject('/health/live')).statusCode, 200)
  app.health.drain()
  t.equal((await app.inject('/health/live')).statusCode, 200)
})

t.test('paths are configurable', async (t) => {
  const app = await build(t, { path: '/ready', livePath: '/alive' })
  t.equal(app.health.path, '/ready')
  t.equal(app.health.livePath, '/alive')
  t.equal((await app.inject('/ready')).statusCode, 200)
  t.equal((await app.inject('/alive')).statusCode, 200)
  t.equal((await app.inject('/health')).statusCode, 404)
})

t.test('inside a prefixed scope, health.path is the mounted path, prefix included', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(async (api) => {
    await api.register(healthPlugin, { path: '/status', livePath: '/status/live' })
    api.get('/paths', async () => ({ path: api.health.path, livePath: api.health.livePath }))
  }, { prefix: '/api' })
  await app.ready()
  t.same((await app.inject('/api/paths')).json(), { path: '/api/status', livePath: '/api/status/live' })
  t.equal((await app.inject('/api/status')).statusCode, 200)
  t.equal((await app.inject('/api/status/live')).statusCode, 200)
})

t.test('the body is serialised once per change, not per probe, and stays current', async (t) => {
  const db = switchable()
  const app = await build(t, { defaultInterval: 10, checks: { db: db.fn } })
  const first = await app.inject('/health')
  const second = await app.inject('/health')
  t.equal(second.body, first.body)
  db.fail('now down')
  await until('db to fail', () => checkStatus(app, 'db') === 'critical')
  const third = await app.inject('/health')
  t.equal(third.statusCode, 503)
  t.match(third.json(), { checks: { db: { output: 'now down' } } })
})

t.test('/health answers from the cache while a check run is still pending', async (t) => {
  let calls = 0
  let release!: () => void
  const pending = new Promise<void>((resolve) => { release = resolve })
  t.teardown(() => release())
  // The first run (awaited in onReady) passes; every later run hangs until the test releases it.
  const app = await build(t, { checks: { slow: { fn: async () => { if (++calls > 1) await pending }, interval: 10, timeout: 9000 } } })
  await until('a second run to be in flight', () => calls >= 2)
  let settled = false
  pending.then(() => { settled = true }, () => {})
  const res = await app.inject('/health')
  t.equal(settled, false, 'the check run is still pending while the answer is sent')
  t.equal(res.statusCode, 200)
  t.match(res.json(), { status: 'passing', checks: { slow: { status: 'passing' } } }, 'the last completed result')
  t.equal(calls, 2, 'at most one pending call per check: the hung one is not piled on')
})
