import Fastify from 'fastify'
import t from 'tap'
import healthPlugin, { DEFAULTS, type HealthPluginOptions } from '../src/index.js'
import { normalizeOptions } from '../src/options.js'

t.test('defaults', async (t) => {
  const options = normalizeOptions({})
  t.strictSame(options, {
    path: '/health',
    livePath: '/health/live',
    details: true,
    checks: [],
    pressure: {
      maxEventLoopDelay: 1000,
      maxHeapUsedBytes: 0,
      maxRssBytes: 0,
      maxEventLoopUtilization: 0,
      sampleInterval: 1000,
      loadShedding: false,
      status: 'warning'
    },
    defaultTimeout: 2000,
    defaultInterval: 5000,
    meterProvider: undefined
  })
  t.equal(DEFAULTS.critical, true)
  t.ok(Object.isFrozen(DEFAULTS))
})

t.test('checks: a bare function or a spec, with defaults filled in', async (t) => {
  const fn = (): void => {}
  const options = normalizeOptions({
    defaultTimeout: 300,
    defaultInterval: 4000,
    checks: { a: fn, b: { fn, critical: false, timeout: 50, interval: 20, grace: '30s' } }
  })
  t.strictSame(options.checks, [
    { name: 'a', fn, critical: true, timeout: 300, interval: 4000, grace: 0 },
    { name: 'b', fn, critical: false, timeout: 50, interval: 20, grace: 30_000 }
  ])
})

t.test('every option accepts its documented range', async (t) => {
  t.doesNotThrow(() => normalizeOptions({
    path: '/r',
    livePath: '/l',
    details: false,
    checks: { ['x'.repeat(128)]: () => {} },
    underPressure: { maxEventLoopDelay: 0.5, maxHeapUsedBytes: 1, maxRssBytes: 1, maxEventLoopUtilization: 1, sampleInterval: 20, loadShedding: true },
    defaultTimeout: 1,
    defaultInterval: 2_147_483_647
  }))
})

// Each bad value, described by the field it gets wrong. The error message names that field; tests assert the code only.
const invalid: Array<[string, unknown]> = [
  ['path without a leading slash', { path: 'health' }],
  ['path not a string', { path: 1 }],
  ['livePath without a leading slash', { livePath: 'live' }],
  ['livePath equal to path', { path: '/h', livePath: '/h' }],
  ['details not a boolean', { details: 'no' }],
  ['an unknown option (a typo)', { detail: false }],
  ['checks not an object', { checks: 'db' }],
  ['checks as an array', { checks: [() => {}] }],
  ['checks null', { checks: null }],
  ['a check that is neither a function nor a spec', { checks: { db: 1 } }],
  ['a spec without fn', { checks: { db: { critical: false } } }],
  ['a spec whose fn is not a function', { checks: { db: { fn: 'SELECT 1' } } }],
  ['a spec with an unknown key', { checks: { db: { fn: () => {}, retries: 2 } } }],
  ['a check timeout of 0', { checks: { db: { fn: () => {}, timeout: 0 } } }],
  ['a check interval that is not a duration', { checks: { db: { fn: () => {}, interval: '10 s' } } }],
  ['a check critical that is not a boolean', { checks: { db: { fn: () => {}, critical: 1 } } }],
  ['an empty check name', { checks: { '': () => {} } }],
  ['a check name over 128 characters', { checks: { ['x'.repeat(129)]: () => {} } }],
  ['a bad check whose name needs JSON-pointer escaping', { checks: { 'a/b~c': 1 } }],
  ['underPressure not an object', { underPressure: true }],
  ['underPressure with an unknown key', { underPressure: { maxEventLoopDelayMs: 5 } }],
  ['sampleInterval below 20', { underPressure: { sampleInterval: 19 } }],
  ['sampleInterval of 0', { underPressure: { sampleInterval: 0 } }],
  ['sampleInterval as a string below 20 ms', { underPressure: { sampleInterval: '10ms' } }],
  ['maxEventLoopDelay negative', { underPressure: { maxEventLoopDelay: -1 } }],
  ['maxHeapUsedBytes fractional', { underPressure: { maxHeapUsedBytes: 1.5 } }],
  ['maxRssBytes negative', { underPressure: { maxRssBytes: -1 } }],
  ['maxEventLoopUtilization above 1', { underPressure: { maxEventLoopUtilization: 1.5 } }],
  ['loadShedding not a boolean', { underPressure: { loadShedding: 'on' } }],
  ['defaultTimeout of 0', { defaultTimeout: 0 }],
  ['defaultInterval beyond what setTimeout can wait', { defaultInterval: 2 ** 31 }],
  ['defaultInterval neither a number nor a duration', { defaultInterval: 'five seconds' }],
  ['defaultTimeout negative', { defaultTimeout: -5 }]
]

t.test('each invalid option fails ready() with FST_REG_HEALTH_INVALID_OPTION', async (t) => {
  for (const [what, options] of invalid) {
    t.test(what, async (t) => {
      const app = Fastify()
      t.teardown(() => app.close())
      app.register(healthPlugin, options as HealthPluginOptions)
      await t.rejects(async () => await app.ready(), { code: 'FST_REG_HEALTH_INVALID_OPTION', statusCode: 500 })
    })
  }
})

t.test('durations take the same grammar as @reg/fastify-consul: ms, or "500ms", "1.5s", "2m", "1m30s"', async (t) => {
  const o = normalizeOptions({ defaultTimeout: '1.5s', defaultInterval: '1m30s', underPressure: { sampleInterval: '250ms' }, checks: { db: { fn: () => {}, timeout: '500ms', interval: 2000 } } })
  t.equal(o.defaultTimeout, 1500)
  t.equal(o.defaultInterval, 90_000)
  t.equal(o.pressure.sampleInterval, 250)
  t.match(o.checks[0], { timeout: 500, interval: 2000 })
  t.throws(() => normalizeOptions({ checks: { db: { fn: () => {}, timeout: '10 s' } } }), { code: 'FST_REG_HEALTH_INVALID_OPTION', message: /checks\.db\.timeout/ }, 'named as written')
})

t.test('options that are not an object at all are refused with the same code', async (t) => {
  t.throws(() => normalizeOptions(null), { code: 'FST_REG_HEALTH_INVALID_OPTION' })
})
