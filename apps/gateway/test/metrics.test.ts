import t from 'tap'
import { appMetrics } from '../src/metrics.js'

// GET /metrics itself is tested in dashboard.test.ts (on by default) and, scraped through Consul, in
// scrape.test.ts; here, what a broken instrument does to a scrape.
t.test('a failing callback costs its own series, not the scrape; it is reported as a warning', async (t) => {
  const metrics = appMetrics()
  t.teardown(() => metrics.shutdown())
  metrics.provider.getMeter('test').createObservableGauge('broken').addCallback(() => { throw new Error('boom') })
  metrics.provider.getMeter('test').createObservableGauge('fine').addCallback((r) => r.observe(1))
  const warned = new Promise<Error>((resolve) => process.once('warning', resolve))
  const text = await metrics.scrape()
  t.match(text, /^fine\{[^}]*\} 1$/m)
  t.match((await warned).message, /boom/)
})
