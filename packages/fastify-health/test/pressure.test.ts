import underPressure from '@fastify/under-pressure'
import Fastify from 'fastify'
import t from 'tap'
import healthPlugin from '../src/index.js'
import { DEFAULTS } from '../src/options.js'
import { letThrough, pressureReader, underPressureOptions, type PressureOptions } from '../src/pressure.js'
import { build, logCollector, until } from './fixtures/helpers.js'

const off: PressureOptions = { maxEventLoopDelay: 0, maxHeapUsedBytes: 0, maxRssBytes: 0, maxEventLoopUtilization: 0, sampleInterval: 1000, loadShedding: false, status: 'warning' }

t.test('pressureReader names each exceeded threshold, in under-pressure order, and is absent when all are off', async (t) => {
  t.equal(pressureReader(off), undefined)
  const read = pressureReader({ ...off, maxEventLoopDelay: 100, maxHeapUsedBytes: 10, maxRssBytes: 10, maxEventLoopUtilization: 0.5 })
  t.same(read?.({ eventLoopDelay: 101, heapUsed: 11, rssBytes: 11, eventLoopUtilized: 0.6 }), ['eventLoopDelay', 'heapUsedBytes', 'rssBytes', 'eventLoopUtilization'])
  t.same(read?.({ eventLoopDelay: 100, heapUsed: 10, rssBytes: 10, eventLoopUtilized: 0.5 }), [], 'a value equal to its threshold is fine, as in under-pressure')
  t.same(pressureReader({ ...off, maxRssBytes: 10 })?.({ eventLoopDelay: 1e9, heapUsed: 1e9, rssBytes: 11, eventLoopUtilized: 1 }), ['rssBytes'], 'thresholds that are off are ignored')
})

t.test('under-pressure options: interval ELU always, a pass-through handler unless shedding', async (t) => {
  t.same(underPressureOptions({ ...off, maxHeapUsedBytes: 5, sampleInterval: 20 }), {
    maxEventLoopDelay: 0, maxHeapUsedBytes: 5, maxRssBytes: 0, maxEventLoopUtilization: 0, eventLoopUtilizationMode: 'interval', sampleInterval: 20, pressureHandler: letThrough
  })
  t.notOk('pressureHandler' in underPressureOptions({ ...off, loadShedding: true }))
  t.equal(letThrough(), undefined, 'under-pressure calls next() when its handler returns nothing')
})

// Heap tests turn event-loop delay off: a sample window in which a busy test box records no delay at all
// comes out as Infinity in under-pressure, and would add a second, unrelated reason.
t.test('readiness-only (the default): /health says 429 warning and why, every other route keeps serving', async (t) => {
  t.equal(DEFAULTS.loadShedding, false)
  const app = await build(t, { underPressure: { maxEventLoopDelay: 0, maxHeapUsedBytes: 1, sampleInterval: 20 } })
  const changes: string[] = []
  app.health.onChange((s) => changes.push(s.status))
  await until('under-pressure to sample', () => app.isUnderPressure())

  const health = await app.inject('/health')
  t.equal(health.statusCode, 429, 'overload is a warning: Consul keeps the instance, at its warning weight')
  t.match(health.json(), { status: 'warning', underPressure: true, pressure: ['heapUsedBytes'], draining: false })
  t.equal((await app.inject('/ping')).statusCode, 200, 'no load shedding')
  t.equal((await app.inject('/health/live')).statusCode, 200, 'liveness is not about load')
  t.same(app.health.status().pressure, ['heapUsedBytes'])
  await until('the pressure poll to notify listeners', () => changes.includes('warning'))
})

t.test('underPressure.status "critical": the old behaviour on request, 503', async (t) => {
  const app = await build(t, { underPressure: { maxEventLoopDelay: 0, maxHeapUsedBytes: 1, sampleInterval: 20, status: 'critical' } })
  await until('under-pressure to sample', () => app.isUnderPressure())
  const health = await app.inject('/health')
  t.equal(health.statusCode, 503)
  t.match(health.json(), { status: 'critical', underPressure: true })
})

t.test('load shedding: every route gets 503 with Retry-After, but the health routes still answer for themselves', async (t) => {
  const app = await build(t, { underPressure: { maxEventLoopDelay: 0, maxHeapUsedBytes: 1, sampleInterval: 20, loadShedding: true } })
  await until('under-pressure to sample', () => app.isUnderPressure())

  const ping = await app.inject('/ping')
  t.equal(ping.statusCode, 503)
  t.equal(ping.headers['retry-after'], '10')
  t.equal(ping.json().code, 'FST_UNDER_PRESSURE')
  const health = await app.inject('/health')
  t.equal(health.statusCode, 429)
  t.match(health.json(), { status: 'warning', underPressure: true, pressure: ['heapUsedBytes'] }, 'our body, not the generic error')
  t.equal((await app.inject('/health/live')).statusCode, 200, 'a busy instance must not be restarted by its liveness probe')
})

t.test('pressure comes and goes: listeners and logs see both transitions', async (t) => {
  const logs = logCollector()
  const app = await build(t, { underPressure: { maxEventLoopDelay: 50, sampleInterval: 20 } }, {
    server: { logger: { level: 'info', stream: logs.stream } }
  })
  const changes: string[] = []
  app.health.onChange((s) => changes.push(s.status))
  // Block the loop well past the threshold until a sample catches it; a loaded CI box may need more than one go.
  await until('a blocked loop to count as pressure', () => {
    const end = Date.now() + 200
    while (Date.now() < end);
    return changes.includes('warning')
  })
  await until('the loop to recover', () => changes.at(-1) === 'passing')
  t.equal((await app.inject('/health')).statusCode, 200)
  const lines = logs.lines().filter((l) => l.plugin === '@reg/fastify-health')
  t.ok(lines.some((l) => l.msg === 'under pressure' && Array.isArray(l.pressure) && l.pressure.includes('eventLoopDelay')))
  t.ok(lines.some((l) => l.msg === 'no longer under pressure'))
})

t.test('with every threshold off there is no pressure reading at all', async (t) => {
  const app = await build(t, { underPressure: { maxEventLoopDelay: 0 } })
  t.equal(app.isUnderPressure(), false)
  t.match(app.health.status(), { underPressure: false, pressure: [] })
})

t.test('@fastify/under-pressure registered by the app as well is refused with a code', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(underPressure)
  app.register(healthPlugin)
  await t.rejects(async () => await app.ready(), { code: 'FST_REG_HEALTH_UNDER_PRESSURE_CONFLICT' })
})
