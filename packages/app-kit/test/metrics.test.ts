import Fastify from 'fastify'
import t from 'tap'
import { appMetrics, metricsRoute, PROMETHEUS_CONTENT_TYPE } from '../src/index.js'

// The apps' own tests read /metrics with their plugins' series (user-service's metrics.test.ts, the
// gateway's dashboard.test.ts) and scraped through Consul by a real scraper (the gateway's scrape.test.ts).

t.test('GET /metrics: Prometheus text with what was recorded and Node\'s runtime and process series', async (t) => {
  const metrics = appMetrics()
  const app = Fastify()
  t.teardown(async () => { await app.close(); await metrics.shutdown() })
  await app.register(metricsRoute, { metrics })
  metrics.provider.getMeter('test').createCounter('kit_requests').add(3)
  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], PROMETHEUS_CONTENT_TYPE)
  t.match(res.body, /^kit_requests_total\{[^}]*\} 3$/m, 'what the plugins record into the provider')
  t.match(res.body, /^nodejs_eventloop_utilization\{/m, 'Node\'s runtime')
  t.match(res.body, /^process_memory_usage\{/m, 'this process')
  t.match(res.body, /^process_cpu_time_total\{/m)
})

t.test('a failing callback costs its own series, not the scrape; it is reported as a warning', async (t) => {
  const metrics = appMetrics()
  t.teardown(() => metrics.shutdown())
  metrics.provider.getMeter('test').createObservableGauge('broken').addCallback(() => { throw new Error('boom') })
  metrics.provider.getMeter('test').createObservableGauge('fine').addCallback((r) => r.observe(1))
  const warned = new Promise<Error>((resolve) => process.once('warning', resolve))
  const text = await metrics.scrape()
  t.match(text, /^fine\{[^}]*\} 1$/m)
  t.notMatch(text, /^broken/m, 'the broken series is left out')
  t.match((await warned).message, /boom/)
})
