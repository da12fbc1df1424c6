import { testMeter } from '@reg/testkit'
import Fastify from 'fastify'
import t from 'tap'
import healthPlugin, { STATUS_VALUE } from '../src/index.js'
import { build, switchable, until } from './fixtures/helpers.js'

t.test('reg_health_status and reg_health_check_status follow the checks; every run is timed', async (t) => {
  const m = testMeter(t)
  const db = switchable()
  const cache = switchable()
  const app = await build(t, {
    meterProvider: m.provider,
    checks: { db: { fn: db.fn, interval: 10 }, cache: { fn: cache.fn, critical: false, interval: 10 } }
  })
  t.equal(await m.value('reg_health_status'), STATUS_VALUE.passing)
  t.same((await m.collect()).find((p) => p.name === 'reg_health_status')?.attributes, {}, 'one series, no labels')
  t.equal(await m.value('reg_health_check_status', { check: 'db' }), 0)

  cache.fail('slow')
  await until('cache warning', () => app.health.status().status === 'warning')
  t.equal(await m.value('reg_health_status'), 1, 'warning is 1')
  t.equal(await m.value('reg_health_check_status', { check: 'cache' }), 1)
  db.fail()
  await until('db critical', () => app.health.status().status === 'critical')
  t.equal(await m.value('reg_health_status'), 2, 'critical is 2')
  t.equal(await m.value('reg_health_check_status', { check: 'db' }), 2)
  t.equal(await m.value('reg_health_check_status', { check: 'cache' }), 1)

  const runs = (await m.collect()).filter((p) => p.name === 'reg_health_check_duration_seconds')
  t.same(runs.map((p) => p.attributes.check).sort(), ['cache', 'db'], 'a duration series per check')
  const dbRuns = runs.find((p) => p.attributes.check === 'db')!
  t.ok(dbRuns.count! >= db.runs - 1 && dbRuns.count! <= db.runs, `every run recorded (${dbRuns.count} of ${db.runs})`)

  db.pass()
  cache.pass()
  await until('passing again', () => app.health.status().status === 'passing')
  app.health.drain()
  t.equal(await m.value('reg_health_status'), 2, 'draining reads as critical, as Consul sees it')
})

t.test('without meterProvider and without an SDK, the plugin works and records nothing anywhere', async (t) => {
  const m = testMeter(t)
  const app = await build(t, { checks: { db: () => {} } })
  t.equal(app.health.status().status, 'passing')
  t.same(await m.collect(), [], 'a provider nobody passed sees nothing (negative control)')
})

t.test('after close the status is no longer read: the SDK keeps the last value', async (t) => {
  const m = testMeter(t)
  const app = await build(t, { meterProvider: m.provider })
  t.equal(await m.value('reg_health_status'), 0)
  await app.close()
  app.health.drain()
  t.equal(app.health.status().status, 'critical')
  t.equal(await m.value('reg_health_status'), 0, 'a closed app reports nothing new')
})

t.test('meterProvider must be a MeterProvider', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(healthPlugin, { meterProvider: {} as never })
  await t.rejects(async () => { await app.ready() }, { code: 'FST_REG_HEALTH_INVALID_OPTION', message: /meterProvider/ })
})
