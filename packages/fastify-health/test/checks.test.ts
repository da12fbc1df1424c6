import t from 'tap'
import { CheckScheduler, MAX_OUTPUT_LENGTH, errorOutput, runCheck, type CheckDefinition, type CheckFn, type CheckResult } from '../src/checks.js'
import { until } from './fixtures/helpers.js'

function def (fn: CheckFn, overrides: Partial<CheckDefinition> = {}): CheckDefinition {
  return { name: 'c', fn, critical: true, timeout: 1000, interval: 20, ...overrides }
}

/** Waits until a witness check on the same kind of timer has run `n` times: "several intervals passed". */
async function intervalsPass (n: number, interval = 10): Promise<void> {
  let runs = 0
  const witness = new CheckScheduler(() => {})
  witness.add(def(() => { runs++ }, { name: 'witness', interval }))
  await witness.start()
  await until(`${n} witness runs`, () => runs >= n)
  witness.stop()
}

async function once (fn: CheckFn, overrides: Partial<CheckDefinition> = {}): Promise<CheckResult> {
  return await runCheck(def(fn, overrides), new AbortController()).result
}

t.test('a check passes when it returns or resolves, whatever the value', async (t) => {
  const sync = await once(() => 42)
  t.equal(sync.status, 'passing')
  t.notOk('output' in sync, 'no output unless the check reports one')
  t.equal(sync.critical, true)
  t.type(sync.durationMs, 'number')
  t.equal(new Date(sync.checkedAt).toISOString(), sync.checkedAt, 'checkedAt is an ISO string')
  t.ok(Object.isFrozen(sync), 'results are immutable')
  t.equal((await once(async () => undefined)).status, 'passing')
  // A fetch Response has a numeric status: it must not be mistaken for a report.
  t.equal((await once(async () => ({ status: 200 }))).status, 'passing')
  t.equal((await once(async () => null)).status, 'passing')
})

t.test('a check may report its status and output explicitly', async (t) => {
  t.strictSame(
    { ...(await once(async () => ({ status: 'warning', output: 'replica lag 12s' }))), durationMs: 0, checkedAt: '' },
    { status: 'warning', output: 'replica lag 12s', durationMs: 0, checkedAt: '', critical: true }
  )
  t.equal((await once(() => ({ status: 'critical' }))).status, 'critical')
  const odd = await once(() => ({ status: 'passing', output: 3 }))
  t.notOk('output' in odd, 'a non-string output is ignored')
  const capped = await once(() => ({ status: 'critical', output: 'gone' }), { critical: false })
  t.equal(capped.status, 'warning', 'a non-critical check cannot report critical')
  t.equal(capped.critical, false)
})

t.test('a throwing check fails with its message and never its stack', async (t) => {
  const sync = await once(() => { throw new Error('db down') })
  t.equal(sync.status, 'critical')
  t.equal(sync.output, 'db down')
  const rejected = await once(async () => { throw new TypeError('fetch failed') }, { critical: false })
  t.equal(rejected.status, 'warning', 'a failing non-critical check warns')
  t.equal(rejected.output, 'fetch failed')
  t.equal((await once(() => Promise.reject(new Error('x')))).output, 'x')
  t.equal(errorOutput('plain string'), 'plain string')
  t.equal(errorOutput(new AggregateError([])), 'AggregateError', 'an empty message falls back to the name')
  const long = await once(() => { throw new Error('x'.repeat(5000)) })
  t.equal(long.output?.length, MAX_OUTPUT_LENGTH, 'long outputs are clipped')
  t.ok(long.output?.endsWith('…'))
})

t.test('a hung check times out with "timeout after Nms" and sees its signal abort', async (t) => {
  let seen: AbortSignal | undefined
  let release: (v?: unknown) => void = () => {}
  const run = runCheck(def((signal) => {
    seen = signal
    return new Promise((resolve) => { release = resolve })
  }, { timeout: 30 }), new AbortController())
  const result = await run.result
  t.equal(result.status, 'critical')
  t.equal(result.output, 'timeout after 30ms')
  t.equal(seen?.aborted, true)
  t.equal((seen?.reason as Error).name, 'TimeoutError', 'fetch(url, { signal }) rejects with this reason')
  release()
  await run.settled
  t.equal((await run.result).output, 'timeout after 30ms', 'a late success does not overwrite the timeout')
})

t.test('a check that rejects on abort still reports the timeout, not the abort error', async (t) => {
  const result = await once((signal) => new Promise((_resolve, reject) => {
    signal.addEventListener('abort', () => reject(new Error('aborted by signal')))
  }), { timeout: 10 })
  t.equal(result.output, 'timeout after 10ms')
})

t.test('the scheduler runs each check on its interval and reports every result', async (t) => {
  const results: Array<[string, CheckResult]> = []
  const scheduler = new CheckScheduler((name, result) => results.push([name, result]))
  t.teardown(() => scheduler.stop())
  let runs = 0
  scheduler.add(def(() => { runs++ }, { name: 'a', interval: 10 }))
  await scheduler.start()
  t.equal(results.length, 1, 'start() resolves once the first round has reported')
  await until('three runs', () => runs >= 3)
  t.ok(results.every(([name, r]) => name === 'a' && r.status === 'passing'))
})

t.test('duplicate names are refused with a code', async (t) => {
  const scheduler = new CheckScheduler(() => {})
  scheduler.add(def(() => {}, { name: 'db' }))
  t.throws(() => scheduler.add(def(() => {}, { name: 'db' })), { code: 'FST_REG_HEALTH_DUPLICATE_CHECK' })
  scheduler.stop()
})

t.test('a run never overlaps the previous one, even after the previous one timed out', async (t) => {
  const results: CheckResult[] = []
  const scheduler = new CheckScheduler((_name, result) => results.push(result))
  t.teardown(() => scheduler.stop())
  let running = 0
  let maxRunning = 0
  let runs = 0
  let release: () => void = () => {}
  scheduler.add(def(() => {
    runs++
    running++
    maxRunning = Math.max(maxRunning, running)
    // Ignores its signal: only release() ends it.
    return new Promise<void>((resolve) => { release = () => { running--; resolve() } })
  }, { timeout: 10, interval: 10 }))
  await scheduler.start()
  t.equal(results[0]?.output, 'timeout after 10ms')
  // Give the scheduler several intervals' worth of chances to start a second copy; it must not.
  await intervalsPass(5)
  t.equal(runs, 1, 'no second run while the first is still pending')
  release()
  await until('the next run', () => runs === 2)
  release()
  t.equal(maxRunning, 1)
})

t.test('checks added after start() run at once; stop() aborts runs in flight and drops late results', async (t) => {
  const results: string[] = []
  const scheduler = new CheckScheduler((name) => results.push(name))
  await scheduler.start()
  let aborted: unknown
  scheduler.add(def((signal) => new Promise((resolve) => {
    signal.addEventListener('abort', () => { aborted = signal.reason; resolve(undefined) })
  }), { name: 'slow' }))
  let fastRuns = 0
  scheduler.add(def(() => { fastRuns++ }, { name: 'fast', interval: 10 }))
  await until('the late check to report', () => results.includes('fast'))
  scheduler.stop()
  t.type(aborted, Error, 'the in-flight run was aborted')
  const runsAtStop = fastRuns
  scheduler.add(def(() => { fastRuns++ }, { name: 'after-stop' }))
  await intervalsPass(5)
  t.equal(fastRuns, runsAtStop, 'nothing runs after stop()')
  t.notOk(results.includes('slow'), 'the aborted run was not reported')
  t.notOk(results.includes('after-stop'))
})
