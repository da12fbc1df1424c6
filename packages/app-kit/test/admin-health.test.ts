import type { HealthStatus } from '@reg/fastify-health'
import Fastify from 'fastify'
import t from 'tap'
import { adminHealthRoute } from '../src/index.js'

// The admin listener's /health: the whole status, with Consul's status codes. The apps' own tests read it
// on the real admin port of their processes (gateway admin.test.ts, user-service connect.test.ts).

t.test('GET and HEAD /health: the whole status with every check\'s output, 200/429/503 as on the public route', async (t) => {
  let current: HealthStatus = { status: 'passing', draining: false, underPressure: false, pressure: [], checks: {} }
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(adminHealthRoute, { health: { status: () => current } })

  const passing = await app.inject('/health')
  t.equal(passing.statusCode, 200)
  t.equal(passing.headers['cache-control'], 'no-store', 'never cached by something in between')
  t.same(passing.json(), current)

  current = {
    status: 'warning',
    draining: false,
    underPressure: false,
    pressure: [],
    checks: { upstream: { status: 'warning', output: 'no instance of user-service in Consul', durationMs: 1, checkedAt: '2026-12-04T20:00:00.000Z', critical: false } }
  }
  const warning = await app.inject('/health')
  t.equal(warning.statusCode, 429)
  t.equal(warning.json().checks.upstream.output, 'no instance of user-service in Consul', 'the outputs an operator needs')

  current = { ...current, status: 'critical', draining: true }
  t.equal((await app.inject({ method: 'HEAD', url: '/health' })).statusCode, 503)
})
