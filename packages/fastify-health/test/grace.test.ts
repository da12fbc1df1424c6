import { Writable } from 'node:stream'
import t from 'tap'
import { build, until } from './fixtures/helpers.js'

// Issue #29 item 4: a check on something that answers only after boot (a discovery watch's first answer)
// must not make the instance register as warning. `grace` is a start period, as Docker's start_period.

type Body = { status: string, checks: Record<string, { status: string, output?: string, starting?: boolean }> }

function logCapture (): { stream: Writable, records: () => Array<Record<string, unknown>> } {
  const lines: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, cb) { lines.push(...chunk.toString().split('\n').filter(Boolean)); cb() } })
  return { stream, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) }
}

t.test('within grace a failing check is shown as starting but not counted; its first pass ends the period', async (t) => {
  let answered = false
  const logs = logCapture()
  const app = await build(t, {
    checks: {
      upstream: { fn: () => answered ? { status: 'passing', output: '3 instances' } : { status: 'warning', output: 'no answer from Consul yet' }, critical: false, interval: 20, grace: '1m' }
    }
  }, { server: { logger: { level: 'info', stream: logs.stream } } })
  let res = await app.inject('/health')
  t.equal(res.statusCode, 200, 'ready() is passing: what a registration sends as its initial Status')
  t.match(res.json<Body>().checks.upstream, { status: 'warning', output: 'no answer from Consul yet', starting: true }, 'the failure is shown, marked starting')
  t.ok(logs.records().some((r) => r.msg === 'health check "upstream" is warning, within its start period (not counted)' && r.level === 30), 'logged at info, not warn')

  answered = true
  await until('the first pass', () => app.health.status().checks.upstream?.status === 'passing')
  t.notOk('starting' in app.health.status().checks.upstream!, 'no longer starting')
  answered = false
  await until('a failure after the first pass', () => app.health.status().checks.upstream?.status === 'warning')
  res = await app.inject('/health')
  t.equal(res.statusCode, 429, 'after the first pass, failures count even within the period (Docker\'s rule)')
  t.notOk('starting' in res.json<Body>().checks.upstream!)
})

t.test('a check that is still failing when grace ends counts from then on, and is logged as a failure', async (t) => {
  const logs = logCapture()
  const app = await build(t, { checks: { db: { fn: () => { throw new Error('not open') }, interval: 20, grace: 300 } } }, { server: { logger: { level: 'info', stream: logs.stream } } })
  t.equal(app.health.status().status, 'passing', 'within grace')
  await until('grace over', () => app.health.status().status === 'critical', 5000)
  t.notOk('starting' in app.health.status().checks.db!)
  t.ok(logs.records().some((r) => r.msg === 'health check "db" is critical' && r.level === 40), 'the end of grace is logged at warn')
})

t.test('negative control: without grace the same check makes the instance warning from ready()', async (t) => {
  const app = await build(t, { checks: { upstream: { fn: () => ({ status: 'warning', output: 'no answer from Consul yet' }), critical: false } } })
  const res = await app.inject('/health')
  t.equal(res.statusCode, 429)
  t.notOk('starting' in res.json<Body>().checks.upstream!)
})

t.test('addCheck() takes grace too, and grace is validated', async (t) => {
  const app = await build(t)
  app.health.addCheck('late', () => { throw new Error('warming') }, { grace: '10s', interval: 20 })
  await until('first result', () => app.health.status().checks.late !== undefined)
  t.equal(app.health.status().status, 'passing')
  t.equal(app.health.status().checks.late?.starting, true)
  t.throws(() => app.health.addCheck('bad', () => {}, { grace: -1 }), { code: 'FST_REG_HEALTH_INVALID_CHECK' })
  t.throws(() => app.health.addCheck('bad', () => {}, { grace: 'soon' }), { code: 'FST_REG_HEALTH_INVALID_CHECK' })
  await t.rejects(build(t, { checks: { x: { fn: () => {}, grace: 'later' } } }), { code: 'FST_REG_HEALTH_INVALID_OPTION' })
})
