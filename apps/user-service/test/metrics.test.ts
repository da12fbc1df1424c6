import t from 'tap'
import { buildApp } from './fixtures/app.js'

t.test('GET /metrics: Prometheus text with the plugins\' metrics and Node\'s own', async (t) => {
  const app = await buildApp(t)
  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  // The health plugin's, with the database check this app adds.
  t.match(res.body, /^# TYPE reg_health_status gauge$/m)
  t.match(res.body, /^reg_health_status\{[^}]*\} 0$/m, 'passing')
  t.match(res.body, /^reg_health_check_status\{check="database"[^}]*\} 0$/m)
  t.match(res.body, /^reg_health_check_duration_seconds_count\{check="database"[^}]*\} [1-9]/m, 'the first run, timed')
  // Node's runtime and this process.
  t.match(res.body, /^nodejs_eventloop_utilization\{/m)
  t.match(res.body, /^nodejs_eventloop_time_total\{/m)
  t.match(res.body, /^process_memory_usage\{/m)
  t.match(res.body, /^process_cpu_time_total\{/m)
})

t.test('metrics: false serves no /metrics (negative control)', async (t) => {
  const app = await buildApp(t, { metrics: false })
  t.equal((await app.inject('/metrics')).statusCode, 404)
})
