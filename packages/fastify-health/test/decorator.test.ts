import Fastify from 'fastify'
import t from 'tap'
import { CheckScheduler } from '../src/checks.js'
import healthPlugin, { type HealthPluginOptions, type HealthStatus } from '../src/index.js'
import { build, checkStatus, logCollector, switchable, until } from './fixtures/helpers.js'

t.test('status() is cached and frozen between changes', async (t) => {
  const app = await build(t, { checks: { db: () => {} } })
  const status = app.health.status()
  t.equal(app.health.status(), status, 'the same object: nothing is recomputed per call')
  t.ok(Object.isFrozen(status))
  t.match(status, { status: 'passing', draining: false, underPressure: false, checks: { db: { status: 'passing', critical: true } } })
})

t.test('onChange fires only on real changes, and unsubscribe works', async (t) => {
  const db = switchable()
  const app = await build(t, { defaultInterval: 10, checks: { db: db.fn } })
  const seen: HealthStatus[] = []
  const off = app.health.onChange((s) => seen.push(s))

  const runs = db.runs
  await until('a few more passing runs', () => db.runs >= runs + 3)
  t.equal(seen.length, 0, 'passing → passing is not a change')

  db.fail('a')
  await until('db to fail', () => seen.length === 1)
  t.match(seen[0], { status: 'critical', draining: false, checks: { db: { output: 'a' } } })
  db.fail('b')
  await until('the new output to show', () => app.health.status().checks.db?.output === 'b')
  t.equal(seen.length, 1, 'critical → critical with another output is not a change')

  db.report('warning')
  await until('db to warn', () => seen.length === 2)
  t.equal(seen[1]?.status, 'warning')

  off()
  db.pass()
  await until('db to pass', () => checkStatus(app, 'db') === 'passing')
  t.equal(seen.length, 2, 'no calls after unsubscribing')
})

t.test('duplicate check names are refused with a code', async (t) => {
  const app = await build(t, { checks: { db: () => {} } }, {
    setup: (app) => {
      t.throws(() => app.health.addCheck('db', () => {}), { code: 'FST_REG_HEALTH_DUPLICATE_CHECK' }, 'before ready')
    }
  })
  t.throws(() => app.health.addCheck('db', () => {}), { code: 'FST_REG_HEALTH_DUPLICATE_CHECK' }, 'after ready')
})

t.test('checks added before ready run in onReady; checks added after ready start at once', async (t) => {
  let early = 0
  const app = await build(t, {}, {
    setup: (app) => app.health.addCheck('early', () => { early++ }, { critical: false })
  })
  t.equal(early, 1, 'ran once before ready() resolved')
  t.match(app.health.status().checks, { early: { status: 'passing', critical: false } })

  t.notOk('late' in app.health.status().checks, 'a new check counts from its first result')
  app.health.addCheck('late', () => { throw new Error('late and broken') }, { timeout: 100, interval: 10 })
  await until('the late check to report', () => checkStatus(app, 'late') === 'critical')
  const res = await app.inject('/health')
  t.equal(res.statusCode, 503)
  t.match(res.json(), { checks: { late: { output: 'late and broken' } } })
})

t.test('addCheck() arguments are validated with a code', async (t) => {
  const app = await build(t)
  const bad: Array<[string, () => void]> = [
    ['empty name', () => app.health.addCheck('', () => {})],
    ['name with a line break', () => app.health.addCheck('a\nb', () => {})],
    ['name not a string', () => app.health.addCheck(1 as unknown as string, () => {})],
    ['fn not a function', () => app.health.addCheck('x', 'nope' as unknown as () => void)],
    ['timeout 0', () => app.health.addCheck('x', () => {}, { timeout: 0 })],
    ['interval below 10', () => app.health.addCheck('x', () => {}, { interval: 5 })],
    ['interval beyond setTimeout', () => app.health.addCheck('x', () => {}, { interval: 2 ** 31 })],
    ['critical not a boolean', () => app.health.addCheck('x', () => {}, { critical: 'yes' as unknown as boolean })],
    ['unknown option', () => app.health.addCheck('x', () => {}, { retries: 3 } as unknown as object)]
  ]
  for (const [what, call] of bad) t.throws(call, { code: 'FST_REG_HEALTH_INVALID_CHECK' }, what)
  t.equal(Object.keys(app.health.status().checks).length, 0, 'nothing was added')
})

t.test('registering the plugin twice is refused with a code', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(healthPlugin)
  app.register(async (child) => { await child.register(healthPlugin, { path: '/other', livePath: '/other/live' }) })
  await t.rejects(async () => await app.ready(), { code: 'FST_REG_HEALTH_ALREADY_REGISTERED' })
})

t.test('logs go through a child logger, once per transition rather than per run or request', async (t) => {
  const logs = logCollector()
  const db = switchable()
  const app = await build(t, { defaultInterval: 10, checks: { db: db.fn } }, {
    server: { logger: { level: 'info', stream: logs.stream } }
  })
  db.fail('refused')
  await until('db to fail', () => checkStatus(app, 'db') === 'critical')
  const runs = db.runs
  await until('more failing runs', () => db.runs >= runs + 3)
  await app.inject('/health')
  await app.inject('/health')
  db.pass()
  await until('db to pass', () => checkStatus(app, 'db') === 'passing')
  app.health.drain()

  const ours = logs.lines().filter((l) => l.plugin === '@reg/fastify-health')
  t.same(ours.map((l) => [l.level, l.msg]), [
    [40, 'health check "db" is critical'],
    [30, 'health check "db" is passing again'],
    [30, 'draining: readiness reports critical from now on']
  ])
  t.match(ours[0], { check: 'db', status: 'critical', output: 'refused' })
})

t.test('close() stops every check and aborts runs in flight', async (t) => {
  let runs = 0
  let aborted: unknown
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(healthPlugin, { checks: { ticking: { fn: () => { runs++ }, interval: 10 } } })
  await app.ready()
  app.health.addCheck('slow', (signal) => new Promise<void>((resolve) => {
    signal.addEventListener('abort', () => { aborted = signal.reason; resolve() })
  }), { timeout: 60_000 })
  await until('a few runs', () => runs >= 3)
  await app.close()
  t.type(aborted, Error, 'the in-flight run saw its signal abort')
  t.equal(app.health.status().checks.slow, undefined, 'the aborted run was not reported')

  // A witness on the same kind of timer shows that several intervals went by without a run.
  const atClose = runs
  let ticks = 0
  const witness = new CheckScheduler(() => {})
  t.teardown(() => witness.stop())
  witness.add({ name: 'tick', fn: () => { ticks++ }, critical: true, timeout: 1000, interval: 10 })
  await witness.start()
  await until('several intervals to pass', () => ticks >= 5)
  t.equal(runs, atClose, 'no run after close()')
})

t.test('check timeouts must fit in pluginTimeout, which bounds the awaited first run', async (t) => {
  const refused = (what: string, options: HealthPluginOptions): void => {
    t.test(what, async (t) => {
      const app = Fastify({ pluginTimeout: 500 })
      t.teardown(() => app.close())
      app.register(healthPlugin, options)
      await t.rejects(async () => await app.ready(), { code: 'FST_REG_HEALTH_INVALID_OPTION' })
    })
  }
  refused('a check timeout of pluginTimeout', { defaultTimeout: 100, checks: { db: { fn: () => {}, timeout: 500 } } })
  refused('a defaultTimeout of pluginTimeout', { defaultTimeout: 500 })

  t.test('addCheck() before ready is held to the same limit, after ready it is not', async (t) => {
    const app = await build(t, { defaultTimeout: 400 }, {
      server: { pluginTimeout: 500 },
      setup: (app) => {
        t.throws(() => app.health.addCheck('db', () => {}, { timeout: 500 }), { code: 'FST_REG_HEALTH_INVALID_CHECK' })
        app.health.addCheck('ok', () => {}, { timeout: 499 })
      }
    })
    t.doesNotThrow(() => app.health.addCheck('db', () => {}, { timeout: 60_000 }), 'nothing awaits it')
  })

  t.test('pluginTimeout 0 sets no limit', async (t) => {
    const app = await build(t, { checks: { db: { fn: () => {}, timeout: 60_000 } } }, { server: { pluginTimeout: 0 } })
    t.equal(app.health.status().status, 'passing')
  })
})
