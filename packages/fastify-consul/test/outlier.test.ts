import t from 'tap'
import { EJECTION_MEMORY_MS, OutlierState, mayEject } from '../src/discovery/dispatch/outlier.js'
import { DISCOVERY_DEFAULTS, dispatchSettings, validateDiscoveryOptions } from '../src/discovery/options.js'

t.test('mayEject: at least one, then never past maxEjectionPercent', async (t) => {
  const cases: Array<[ejected: number, pool: number, percent: number, expected: boolean]> = [
    [0, 1, 50, true], // Envoy ejects one host whatever the percentage; the dispatcher then routes to the ejected ones
    [0, 3, 0, true],
    [0, 0, 50, false], // nothing to eject from
    [1, 2, 50, false], // a second would leave nothing admitted
    [1, 3, 50, false], // two of three is past half
    [1, 4, 50, true],
    [2, 4, 50, false],
    [2, 5, 50, false],
    [4, 10, 50, true],
    [5, 10, 50, false],
    [1, 2, 100, true],
    [1, 10, 10, false] // Envoy's own default, 10 %: one of ten and no more
  ]
  for (const [ejected, pool, percent, expected] of cases) t.equal(mayEject(ejected, pool, percent), expected, `${ejected} of ${pool} out at ${percent} %`)
})

t.test('OutlierState: failures in a row, back-offs that double with failed probes, ejections that wear off', async (t) => {
  const times = { baseMs: 1000, maxMs: 3500 }
  await t.test('a refused connection makes an outlier at once; other failures at the threshold', async (t) => {
    const s = new OutlierState()
    t.ok(s.fail('connect', 5))
    const u = new OutlierState()
    for (let i = 1; i < 3; i++) t.notOk(u.fail('timeout', 3), `failure ${i}`)
    t.ok(new OutlierState().fail('timeout', 3, true), 'at once (a per-try timeout): whatever the streak')
    u.succeed()
    t.equal(u.failures, 0, 'a success ends the streak')
    t.notOk(u.fail('status', 3))
    t.notOk(u.fail('reset', 3))
    t.ok(u.fail('status', 3), 'three in a row, whatever their kinds')
  })
  await t.test('the back-off doubles with each failed probe of one ejection, capped', async (t) => {
    const s = new OutlierState()
    s.fail('timeout', 1)
    const lengths = [s.eject(0, times)]
    for (let i = 0; i < 4; i++) lengths.push(s.probeFailed(times))
    t.same(lengths, [1000, 2000, 3500, 3500, 3500])
    t.equal(s.failures, 0, 'ejection starts a fresh streak')
    t.equal(s.ejections, 1, 'failed probes are one ejection, not several')
    s.readmit(20_000)
    t.equal(s.failedProbes, 0, 'a re-admission ends the probe streak')
    t.equal(s.eject(20_500, times), 2000, 'so the next ejection starts from base × recent ejections, not from the last back-off')
  })
  await t.test('a flapping instance starts each ejection further out', async (t) => {
    const s = new OutlierState()
    const lengths: number[] = []
    let now = 0
    for (let i = 0; i < 4; i++) {
      lengths.push(s.eject(now, times))
      now += lengths.at(-1)!
      s.readmit(now)
      now += 3000 // admitted 3 s, then stalls again: shorter than the memory of an ejection
    }
    t.same(lengths, [1000, 2000, 3000, 3500])
  })
  await t.test(`each ${EJECTION_MEMORY_MS / 1000} s spent admitted forgets one ejection`, async (t) => {
    const s = new OutlierState()
    t.equal(s.eject(0, times), 1000)
    s.readmit(1000)
    t.equal(s.eject(1000 + EJECTION_MEMORY_MS - 1, times), 2000, 'just under the memory later: remembered')
    s.readmit(40_000)
    t.equal(s.eject(40_000 + 2 * EJECTION_MEMORY_MS, times), 1000, 'two memories later: both forgotten, back to base')
    t.equal(s.ejections, 1)
  })
  await t.test('a maximum below the base is the base, as in Envoy; a huge probe streak stays capped', async (t) => {
    const s = new OutlierState()
    t.equal(s.eject(0, { baseMs: 1000, maxMs: 10 }), 1000)
    t.equal(s.eject(0, { baseMs: 1000, maxMs: 10 }), 1000)
    for (let i = 0; i < 2000; i++) s.probeFailed(times)
    t.equal(s.probeFailed(times), 3500, '2 ** 2001 is Infinity, and the cap still holds')
  })
})

t.test('dispatcher options for outlier detection and latency', async (t) => {
  const defaults = dispatchSettings({})
  t.match(defaults, { balancer: 'weighted', ejectionMs: 1000, maxEjectionMs: 300_000, consecutiveFailures: 5, maxEjectionPercent: 50, retryOn: [], perTryTimeout: 0, slowStartMs: 0 })
  t.equal(DISCOVERY_DEFAULTS.perTryTimeout, 0, 'off unless asked for')
  t.equal(DISCOVERY_DEFAULTS.slowStartMs, 0, 'slow start off unless asked for, as in Envoy')
  t.equal(dispatchSettings({ slowStartMs: '30s' }).slowStartMs, 30_000)
  t.match(dispatchSettings({ balancer: 'least-request', maxEjectionMs: '2m', consecutiveFailures: 3, maxEjectionPercent: 34, retryOn: [502, 503], perTryTimeout: '1.5s' }),
    { balancer: 'least-request', maxEjectionMs: 120_000, consecutiveFailures: 3, maxEjectionPercent: 34, retryOn: [502, 503], perTryTimeout: 1500 })
  for (const kind of ['dispatcher', 'dispatch'] as const) {
    t.doesNotThrow(() => validateDiscoveryOptions({ balancer: 'least-request', retryOn: [429, 503], perTryTimeout: 0, maxEjectionPercent: 0, consecutiveFailures: 1 }, kind))
  }
  t.doesNotThrow(() => validateDiscoveryOptions({ balancer: 'least-request' }, 'discover'), 'a plain watch can pick by least-request too (it has no load, so by weight)')
  for (const [given, field] of [
    [{ retryOn: [200] }, /option retryOn\[0\]: expected an HTTP status from 400 to 599/],
    [{ retryOn: [503, 503] }, /option retryOn: expected an array of distinct HTTP statuses/],
    [{ retryOn: 503 }, /option retryOn: expected an array/],
    [{ perTryTimeout: '1 s' }, /option perTryTimeout: expected a duration/],
    [{ slowStartMs: 'warm' }, /option slowStartMs: expected a duration/],
    [{ slowStartMs: -5 }, /option slowStartMs: expected a duration/],
    [{ maxEjectionMs: -1 }, /option maxEjectionMs: expected a duration/],
    [{ maxEjectionPercent: 101 }, /option maxEjectionPercent: expected a number from 0 to 100/],
    [{ consecutiveFailures: 0 }, /option consecutiveFailures: expected an integer from 1 to 1000/],
    [{ consecutiveFailures: 2.5 }, /option consecutiveFailures: expected an integer/]
  ] as const) {
    const err = (() => { try { validateDiscoveryOptions(given, 'dispatcher') } catch (e) { return e as Error & { code?: string } } })()
    t.equal(err?.code, 'FST_REG_DISCOVERY_INVALID_OPTION', JSON.stringify(given))
    t.match(err?.message, field)
  }
  const plugin = (() => { try { validateDiscoveryOptions({ perTryTimeout: 'soon' }, 'dispatcher', 'discovery') } catch (e) { return e as Error } })()
  t.match(plugin?.message, /option discovery\.perTryTimeout/, 'named as written in the plugin options')
})
