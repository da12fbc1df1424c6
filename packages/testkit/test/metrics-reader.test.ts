import t from 'tap'
import { globalTestMeter, testMeter } from '../src/index.js'

t.test('testMeter reads counters, gauges and histograms back through a real SDK', async (t) => {
  const m = testMeter(t)
  const meter = m.provider.getMeter('test')
  meter.createCounter('c').add(2, { k: 'a' })
  meter.createCounter('c').add(3, { k: 'b' })
  meter.createHistogram('h').record(0.5)
  meter.createHistogram('h').record(1.5)
  meter.createObservableGauge('g').addCallback((r) => r.observe(7, { k: 'a' }))
  t.equal(await m.value('c'), 5, 'summed over attribute sets')
  t.equal(await m.value('c', { k: 'b' }), 3, 'filtered by attributes')
  t.equal(await m.value('g', { k: 'a' }), 7)
  t.equal(await m.value('h'), 2, 'a histogram reads as its sum')
  t.equal((await m.collect()).find((p) => p.name === 'h')?.count, 2, 'and carries its count')
  t.equal(await m.value('absent'), undefined, 'a missing metric is undefined, not 0')
  t.equal(await m.value('c', { k: 'z' }), undefined)
  await m.provider.forceFlush()
})

t.test('a failing observable callback fails the read instead of hiding a metric', async (t) => {
  const m = testMeter()
  t.teardown(() => m.shutdown())
  m.provider.getMeter('test').createObservableGauge('g').addCallback(() => { throw new Error('boom') })
  await t.rejects(m.collect(), /boom/)
})

t.test('globalTestMeter: the global provider, read on a timer like a scraper', async (t) => {
  const { metrics } = await import('@opentelemetry/api')
  const m = globalTestMeter(10)
  t.teardown(() => { m.stop(); metrics.disable(); return m.shutdown() })
  let reads = 0
  metrics.getMeterProvider().getMeter('plugin').createObservableGauge('g').addCallback((r) => { reads++; r.observe(1) })
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.ok(reads >= 2, `collected on its own (${reads} times)`)
  t.equal(await m.value('g'), 1, 'what a plugin records through the global API lands in it')
})
