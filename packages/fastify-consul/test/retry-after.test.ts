import { once } from 'node:events'
import t from 'tap'
import { request } from 'undici'
import { BalancedDispatcher } from '../src/discovery/dispatch/dispatcher.js'
import { retryAfterMs } from '../src/discovery/dispatch/retry-after.js'
import { dispatchSettings, type DispatchOptions } from '../src/discovery/options.js'
import type { Instance } from '../src/discovery/watch/instance.js'
import { upstream, type Upstream, type UpstreamBehaviour } from './fixtures/discovery-consul.js'
import { recordingLogger } from './fixtures/discovery-logger.js'
import { StaticWatch, instanceAt } from './fixtures/discovery-static-watch.js'

// #23: an instance that answers 503 or 429 with Retry-After is left alone that long (an ejection, within
// maxEjectionPercent: fail static), and the request goes elsewhere when retryOn allows. Real upstreams.

interface Teardown { teardown (fn: () => unknown): void }

const raw = (...pairs: string[]): Buffer[] => pairs.map((p) => Buffer.from(p))

t.test('retryAfterMs: delta-seconds or an HTTP-date; anything else is ignored', async (t) => {
  const now = Date.parse('Fri, 04 Dec 2026 04:00:00 GMT')
  t.equal(retryAfterMs(raw('Retry-After', '2'), now), 2000)
  t.equal(retryAfterMs(raw('content-type', 'text/plain', 'retry-after', ' 30 '), now), 30_000)
  t.equal(retryAfterMs(raw('retry-after', 'Fri, 04 Dec 2026 04:00:05 GMT'), now), 5000, 'an HTTP-date')
  t.equal(retryAfterMs(['retry-after', '1'], now), 1000, 'string pairs too')
  for (const bad of ['0', '-1', '1.5', 'soon', '', '2, 3', 'Fri, 04 Dec 2026 03:59:00 GMT', '04 Dec 2026 04:00:05', '1234567890']) {
    t.equal(retryAfterMs(raw('retry-after', bad), now), undefined, `ignored: ${JSON.stringify(bad)}`)
  }
  t.equal(retryAfterMs(raw('retry-after', '1', 'retry-after', '2'), now), undefined, 'repeated: ignored')
  t.equal(retryAfterMs(raw('x', 'y'), now), undefined, 'absent')
})

/** Answers `status` with Retry-After `after` to its first request, 200 after that. */
function firstRefuses (status: number, after: string | undefined): UpstreamBehaviour {
  let first = true
  return (_req, res) => {
    if (first) {
      first = false
      res.statusCode = status
      if (after !== undefined) res.setHeader('retry-after', after)
    }
    res.end('{}')
  }
}

function dispatcherFor (t: Teardown, upstreams: readonly Upstream[], opts: DispatchOptions = {}): BalancedDispatcher {
  const d = new BalancedDispatcher({ ...dispatchSettings({ balancer: 'round-robin', retryOn: [503, 429], ...opts }), watch: new StaticWatch(upstreams.map((u) => instanceAt(u.id, u.port))), log: recordingLogger().log, random: () => 0 })
  t.teardown(() => d.close())
  return d
}

const get = async (d: BalancedDispatcher): Promise<number> => {
  const res = await request('http://svc/', { dispatcher: d })
  await res.body.text()
  return res.statusCode
}

t.test('503 with Retry-After: retried elsewhere, the instance left alone that long, then probed back', async (t) => {
  const busy = await upstream(t, 'busy', firstRefuses(503, '1'))
  const ok = await upstream(t, 'ok')
  const d = dispatcherFor(t, [busy, ok])
  const ejected = once(d.events, 'eject')
  t.equal(await get(d), 200, 'the caller got the other instance\'s answer')
  const [instance, ejection] = await ejected as [Instance, { reason: string, ms: number }]
  t.same([instance.id, ejection], ['busy', { reason: 'status', ms: 1000 }], 'ejected for the Retry-After, not the default back-off')
  for (let i = 0; i < 10; i++) t.equal(await get(d), 200)
  t.equal(busy.received.length, 1, 'nothing reached it while it asked to be left alone')
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const readmitted = once(d.events, 'readmit')
  for (let i = 0; i < 3; i++) await get(d)
  t.same((await readmitted)[1], 'probe', 'after it, a probe brought it back')
})

t.test('429 with an HTTP-date Retry-After is honoured too; without Retry-After nothing is ejected (negative control)', async (t) => {
  const limited = await upstream(t, 'limited', firstRefuses(429, new Date(Date.now() + 3000).toUTCString()))
  const ok = await upstream(t, 'ok')
  const d = dispatcherFor(t, [limited, ok])
  const ejected = once(d.events, 'eject')
  t.equal(await get(d), 200)
  const [, ejection] = await ejected as [Instance, { ms: number }]
  t.ok(ejection.ms > 1000 && ejection.ms <= 3000, `about 3 s (${ejection.ms} ms)`)
  const plain = await upstream(t, 'plain', firstRefuses(503, undefined))
  const other = await upstream(t, 'other')
  const d2 = dispatcherFor(t, [plain, other])
  t.equal(await get(d2), 200)
  t.same(d2.ejected, [], 'a 503 without Retry-After is one failure of five, no ejection')
})

t.test('a whole fleet asking to be left alone keeps serving: the cap holds, the caller gets the 503 and its Retry-After', async (t) => {
  const always: UpstreamBehaviour = (_req, res) => { res.statusCode = 503; res.setHeader('retry-after', '60'); res.end('{}') }
  const fleet = [await upstream(t, 'a', always), await upstream(t, 'b', always)]
  const d = dispatcherFor(t, fleet)
  const res = await request('http://svc/', { dispatcher: d })
  await res.body.text()
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '60', 'the last answer, Retry-After and all, goes to the caller')
  t.equal(d.ejected.length, 1, 'one of two ejected (maxEjectionPercent 50): never both')
  t.equal(await get(d), 503, 'still routed to: fail static')
})

t.test('a Retry-After longer than maxEjectionMs is cut to it', async (t) => {
  const busy = await upstream(t, 'busy', firstRefuses(503, '3600'))
  const ok = await upstream(t, 'ok')
  const d = dispatcherFor(t, [busy, ok], { maxEjectionMs: '5s' })
  const ejected = once(d.events, 'eject')
  await get(d)
  t.equal((await ejected as [Instance, { ms: number }])[1].ms, 5000)
})
