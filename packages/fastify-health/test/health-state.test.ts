import t from 'tap'
import type { CheckResult, CheckStatus } from '../src/checks.js'
import { HealthState, type HealthStatus, type StateLogger } from '../src/health-state.js'

type Line = [level: string, obj: object, msg: string]

function logger (): StateLogger & { lines: Line[] } {
  const lines: Line[] = []
  return {
    lines,
    debug: (obj, msg) => { lines.push(['debug', obj, msg]) },
    info: (obj, msg) => { lines.push(['info', obj, msg]) },
    warn: (obj, msg) => { lines.push(['warn', obj, msg]) },
    error: (obj, msg) => { lines.push(['error', obj, msg]) }
  }
}

function result (status: CheckStatus, critical = true, output?: string): CheckResult {
  return { status, critical, durationMs: 1, checkedAt: new Date(0).toISOString(), ...(output === undefined ? {} : { output }) }
}

t.test('the aggregate: critical beats warning beats passing; draining is critical, pressure a warning', async (t) => {
  const state = new HealthState(logger())
  t.strictSame(state.snapshot(), { status: 'passing', draining: false, underPressure: false, pressure: [], checks: {} })
  state.setResult('a', result('passing'))
  t.equal(state.snapshot().status, 'passing')
  state.setResult('b', result('warning', false))
  t.equal(state.snapshot().status, 'warning')
  state.setResult('c', result('critical'))
  t.equal(state.snapshot().status, 'critical')
  state.setResult('d', result('warning', false))
  t.equal(state.snapshot().status, 'critical', 'a later warning does not hide a critical')
  state.setResult('c', result('passing'))
  t.equal(state.snapshot().status, 'warning')
  state.setPressure(['heapUsedBytes'])
  t.match(state.snapshot(), { status: 'warning', underPressure: true, pressure: ['heapUsedBytes'] })
  state.setResult('b', result('passing'))
  t.match(state.snapshot(), { status: 'warning', underPressure: true }, 'pressure alone is a warning')
  state.setResult('b', result('warning', false))
  state.setPressure([])
  t.match(state.snapshot(), { status: 'warning', underPressure: false, pressure: [] })
  state.drain()
  t.match(state.snapshot(), { status: 'critical', draining: true })
  t.same(Object.keys(state.snapshot().checks), ['a', 'b', 'c', 'd'])
})

t.test('the snapshot is cached and frozen', async (t) => {
  const state = new HealthState(logger())
  state.setResult('a', result('passing'))
  const first = state.snapshot()
  t.equal(state.snapshot(), first, 'reads return the same object until something changes')
  t.ok(Object.isFrozen(first))
  t.ok(Object.isFrozen(first.checks))
  t.ok(Object.isFrozen(first.pressure))
  state.setPressure([])
  t.equal(state.snapshot(), first, 'an unchanged pressure reading does not rebuild it')
  state.setResult('a', result('passing'))
  t.not(state.snapshot(), first)
})

t.test('pressure configured as critical is critical', async (t) => {
  const state = new HealthState(logger(), 'critical')
  state.setPressure(['eventLoopDelay'])
  t.match(state.snapshot(), { status: 'critical', underPressure: true })
})

t.test('a check named __proto__ is an ordinary key', async (t) => {
  const state = new HealthState(logger())
  state.setResult('__proto__', result('critical'))
  t.equal(Object.getPrototypeOf(state.snapshot().checks), Object.prototype)
  t.ok(Object.hasOwn(state.snapshot().checks, '__proto__'))
  t.equal(state.snapshot().status, 'critical')
})

t.test('onChange fires only when status or draining changes, and unsubscribes', async (t) => {
  const state = new HealthState(logger())
  const seen: Array<[string, boolean]> = []
  const off = state.onChange((s) => seen.push([s.status, s.draining]))
  state.setResult('a', result('passing'))
  state.setResult('a', result('passing'))
  t.same(seen, [], 'no change, no call')
  state.setResult('a', result('critical'))
  state.setResult('a', result('critical', true, 'still down'))
  t.same(seen, [['critical', false]], 'a new output alone is not a change')
  state.setPressure(['rssBytes'])
  t.same(seen, [['critical', false]], 'pressure while already critical is not a change')
  state.drain()
  t.same(seen, [['critical', false], ['critical', true]], 'draining is a change even when already critical')
  state.drain()
  t.equal(seen.length, 2, 'drain() is idempotent')
  off()
  off()
  state.setPressure([])
  state.setResult('a', result('passing'))
  t.equal(seen.length, 2, 'no calls after unsubscribing')
})

t.test('one function subscribed twice is two subscriptions', async (t) => {
  const state = new HealthState(logger())
  let calls = 0
  const listener = (): void => { calls++ }
  const offFirst = state.onChange(listener)
  state.onChange(listener)
  offFirst()
  state.setResult('a', result('critical'))
  t.equal(calls, 1)
})

t.test('a throwing listener is logged and does not stop the others', async (t) => {
  const log = logger()
  const state = new HealthState(log)
  let called = false
  state.onChange(() => { throw new Error('listener bug') })
  state.onChange(() => { called = true })
  state.setResult('a', result('critical'))
  t.ok(called)
  const errors = log.lines.filter(([level]) => level === 'error')
  t.equal(errors.length, 1)
  t.match(errors[0]?.[1], { err: { message: 'listener bug' } })
})

t.test('a listener that changes the state again does not make others see the updates out of order', async (t) => {
  const state = new HealthState(logger())
  const seen: HealthStatus[] = []
  state.onChange((s) => { if (s.status === 'critical' && !s.draining) state.drain() })
  state.onChange((s) => seen.push(s))
  state.setResult('a', result('critical'))
  t.same(seen.map((s) => s.draining), [true], 'the second listener got only the newest status')
  t.equal(seen[0], state.snapshot())
})

t.test('transitions are logged once, at warn going bad and at info coming back', async (t) => {
  const log = logger()
  const state = new HealthState(log)
  state.setResult('db', result('passing'))
  state.setResult('db', result('passing'))
  state.setResult('db', result('critical', true, 'refused'))
  state.setResult('db', result('critical', true, 'refused'))
  state.setResult('db', result('passing'))
  state.setResult('cache', result('warning', false, 'slow'))
  state.setPressure(['eventLoopDelay'])
  state.setPressure(['eventLoopDelay', 'rssBytes'])
  state.setPressure([])
  state.drain()
  state.drain()
  t.same(log.lines.map(([level, , msg]) => [level, msg]), [
    ['debug', 'health check "db" is passing'],
    ['warn', 'health check "db" is critical'],
    ['info', 'health check "db" is passing again'],
    ['warn', 'health check "cache" is warning'],
    ['warn', 'under pressure'],
    ['info', 'no longer under pressure'],
    ['info', 'draining: readiness reports critical from now on']
  ])
  t.match(log.lines[1]?.[1], { check: 'db', status: 'critical', output: 'refused', critical: true })
  t.match(log.lines[4]?.[1], { pressure: ['eventLoopDelay'] })
})
