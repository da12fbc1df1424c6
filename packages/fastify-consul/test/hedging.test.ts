import { once } from 'node:events'
import { Readable } from 'node:stream'
import type { ServerResponse } from 'node:http'
import t from 'tap'
import { request } from 'undici'
import { BalancedDispatcher } from '../src/discovery/dispatch/dispatcher.js'
import { HedgeDelay } from '../src/discovery/dispatch/hedge-delay.js'
import type { ServiceDispatcherOptions } from '../src/discovery/dispatch/service-dispatcher.js'
import { dispatchSettings, type DispatchOptions } from '../src/discovery/options.js'
import type { Instance } from '../src/discovery/watch/instance.js'
import { upstream, type Upstream, type UpstreamBehaviour } from './fixtures/discovery-consul.js'
import { recordingLogger } from './fixtures/discovery-logger.js'
import { StaticWatch, instanceAt } from './fixtures/discovery-static-watch.js'

// #23: hedged requests. Real upstreams on loopback: a "slow" one holds each answer for a while (or until
// the test ends), a fast one answers at once; the dispatcher round-robins from the first instance given
// (random: () => 0), so the first request of a run goes to it.

interface Teardown { teardown (fn: () => unknown): void }

/** An upstream that answers after `ms` (never, for Infinity), and counts the requests whose caller went away first. */
async function slow (t: Teardown, id: string, ms: number): Promise<Upstream & { abandoned: () => number }> {
  let abandoned = 0
  const held = new Set<ServerResponse>()
  const behaviour: UpstreamBehaviour = (_req, res) => {
    held.add(res)
    res.on('close', () => {
      held.delete(res)
      if (!res.writableEnded) abandoned++
    })
    if (ms !== Infinity) setTimeout(() => { if (!res.destroyed) res.end(JSON.stringify({ id })) }, ms)
  }
  const u = await upstream(t, id, behaviour)
  t.teardown(() => { for (const res of held) res.destroy() })
  return Object.assign(u, { abandoned: () => abandoned })
}

function dispatcherFor (t: Teardown, upstreams: readonly Upstream[], opts: DispatchOptions = {}, extra: Partial<ServiceDispatcherOptions> = {}): BalancedDispatcher {
  const instances: Instance[] = upstreams.map((u) => instanceAt(u.id, u.port))
  const d = new BalancedDispatcher({ ...dispatchSettings({ balancer: 'round-robin', hedge: { delay: 30 }, ...opts }), watch: new StaticWatch(instances), log: recordingLogger().log, random: () => 0, ...extra })
  t.teardown(() => d.close())
  return d
}

async function get (d: BalancedDispatcher, init: { method?: string, idempotent?: boolean, body?: string } = {}): Promise<{ id: string, status: number }> {
  const res = await request('http://svc/', { dispatcher: d, method: (init.method ?? 'GET') as 'GET', body: init.body, idempotent: init.idempotent })
  const text = await res.body.text()
  return { id: (JSON.parse(text) as { id: string }).id, status: res.statusCode }
}

const settled = async (): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, 50)) }

t.test('a GET slower than the hedge delay is sent again to another instance; the first answer wins, the slow try is aborted', async (t) => {
  const s = await slow(t, 'slow', Infinity)
  const fast = await upstream(t, 'fast')
  const d = dispatcherFor(t, [s, fast])
  const hedged: string[] = []
  const won: string[] = []
  d.events.on('hedge', (i) => hedged.push(i.id))
  d.events.on('hedgeWon', (i) => won.push(i.id))
  t.same(await get(d), { id: 'fast', status: 200 }, 'answered by the hedge, though the first try never answers')
  await settled()
  t.equal(s.received.length, 1, 'the slow instance got the first try')
  t.equal(s.abandoned(), 1, 'and it was aborted once the hedge answered (no socket left waiting)')
  t.same(hedged, ['fast'])
  t.same(won, ['fast'])
  t.match(d.stats, { requests: 1, hedges: 1, hedgesWon: 1, retries: 1 })
  t.equal(d.outstanding(d.instances[0]!) + d.outstanding(d.instances[1]!), 0, 'no attempt is left counted in flight')
})

t.test('the first try wins when it answers before the hedge; the hedge is aborted and its body never reaches the caller', async (t) => {
  const a = await slow(t, 'a', 60)
  const b = await slow(t, 'b', 400)
  const d = dispatcherFor(t, [a, b])
  t.same(await get(d), { id: 'a', status: 200 })
  await settled()
  t.equal(b.received.length, 1, 'the hedge was sent (after 30 ms, before the first answered at 60)')
  t.equal(b.abandoned(), 1, 'and aborted when the first try answered')
  t.match(d.stats, { hedges: 1, hedgesWon: 0 })
})

t.test('an instance that loses every race is ejected after consecutiveFailures; a hedge lost once costs nothing', async (t) => {
  const s = await slow(t, 'frozen', Infinity)
  const fast = await upstream(t, 'fast')
  const d = dispatcherFor(t, [s, fast], { consecutiveFailures: 3, ejectionMs: 60_000 })
  const ejected = once(d.events, 'eject')
  // Round-robin from frozen: every other request starts there and is won by its hedge.
  for (let i = 0; i < 6; i++) t.same(await get(d), { id: 'fast', status: 200 })
  const [instance, ejection] = await ejected as [Instance, { reason: string }]
  t.same([instance.id, ejection.reason], ['frozen', 'timeout'], 'three lost races in a row: ejected as slow')
  t.equal(s.received.length, 3, 'and sent nothing more')
  // Negative control: races lost between answers are no streak (it holds every other request it gets).
  let n = 0
  const held: ServerResponse[] = []
  const mixed = await upstream(t, 'mixed', (_req, res) => {
    if (n++ % 2 === 0) held.push(res)
    else res.end(JSON.stringify({ id: 'mixed' }))
  })
  t.teardown(() => { for (const res of held) res.destroy() })
  const other = await upstream(t, 'other')
  const d2 = dispatcherFor(t, [mixed, other], { consecutiveFailures: 2 })
  for (let i = 0; i < 8; i++) await get(d2)
  t.ok(d2.stats.hedgesWon >= 2, 'it lost races')
  t.same(d2.ejected, [], 'but never twice in a row: no ejection')
})

t.test('a probe outpaced by its hedge backs off again for the same time, so a thawed instance is back within one back-off', async (t) => {
  let frozen = true
  const held: ServerResponse[] = []
  const thawable = await upstream(t, 'thawable', (_req, res) => {
    if (frozen) held.push(res)
    else res.end(JSON.stringify({ id: 'thawable' }))
  })
  t.teardown(() => { for (const res of held) res.destroy() })
  const fast = await upstream(t, 'fast')
  const d = dispatcherFor(t, [thawable, fast], { consecutiveFailures: 1, ejectionMs: 60, maxEjectionMs: 10_000 })
  const backOffs: number[] = []
  d.events.on('eject', (_i, e) => backOffs.push(e.ms))
  d.events.on('probe', (_i, p) => { if (!p.passed) backOffs.push(p.ms) })
  // Frozen, every probe is a request won by its hedge: the caller pays the hedge delay, nothing more.
  for (let i = 0; i < 200 && backOffs.length < 4; i++) {
    t.equal((await get(d)).id, 'fast')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  // A failed probe doubles (dispatcher.test: 50, 100, 120 against a dead port); an outpaced one does not.
  t.same(backOffs, [60, 60, 60, 60], 'ejected for the base, and probed again after the base each time')
  frozen = false
  const readmitted = once(d.events, 'readmit')
  const thawedAt = performance.now()
  for (let i = 0; i < 200 && d.ejected.length > 0; i++) {
    await get(d)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.equal(((await readmitted) as [Instance, string])[1], 'probe', 're-admitted by its next probe')
  // Generous, to prove it ends: one back-off (60 ms) and a request; doubled four times it would be 960 ms.
  t.ok(performance.now() - thawedAt < 900, `back ${Math.round(performance.now() - thawedAt)} ms after the thaw`)
  t.match(d.stats, { ejections: 1 })
})

t.test('a hedge never goes to the same instance: with one instance, the slow try is simply waited for', async (t) => {
  const s = await slow(t, 'only', 120)
  const d = dispatcherFor(t, [s])
  t.same(await get(d), { id: 'only', status: 200 })
  t.equal(s.received.length, 1, 'one request, not two to the same instance')
  t.match(d.stats, { hedges: 0 })
})

t.test('a POST is never hedged; the same POST marked idempotent is (negative control)', async (t) => {
  const s = await slow(t, 'slow', 150)
  const fast = await upstream(t, 'fast')
  const d = dispatcherFor(t, [s, fast])
  t.same(await get(d, { method: 'POST', body: 'x' }), { id: 'slow', status: 200 }, 'the POST waited for its only try')
  t.equal(fast.received.length, 0)
  const d2 = dispatcherFor(t, [s, fast])
  t.same(await get(d2, { method: 'POST', body: 'x', idempotent: true }), { id: 'fast', status: 200 }, 'marked idempotent, it is hedged')
  t.equal(fast.received.length, 1)
  t.equal(fast.received[0]!.body, 'x', 'the hedge carried the same body')
})

t.test('a stream body is not hedged once the first try has read it', async (t) => {
  const s = await slow(t, 'slow', 150)
  const fast = await upstream(t, 'fast')
  const d = dispatcherFor(t, [s, fast])
  const res = await request('http://svc/', { dispatcher: d, method: 'PUT', body: Readable.from(['streamed']) })
  t.equal((JSON.parse(await res.body.text()) as { id: string }).id, 'slow', 'the only try answered')
  t.equal(fast.received.length, 0, 'no hedge: the body was gone')
  t.match(d.stats, { hedges: 0 })
})

t.test('hedges spend the retry budget: an empty budget sends none and counts a denial', async (t) => {
  const s = await slow(t, 'slow', 100)
  const fast = await upstream(t, 'fast')
  const d = dispatcherFor(t, [s, fast], { retryBudget: { ratio: 0, minPerSecond: 0, burst: 1 } })
  t.same(await get(d), { id: 'fast', status: 200 }, 'the one saved-up token paid for a hedge')
  t.same(await get(d), { id: 'slow', status: 200 }, 'round-robin sent the second to slow too; it waited: no token left')
  t.match(d.stats, { hedges: 1, retriesDenied: 1 })
})

t.test('a hedge that answers a retryOn status is dropped while the first try is still out', async (t) => {
  const s = await slow(t, 'slow', 150)
  const busy = await upstream(t, 'busy', (_req, res) => { res.statusCode = 503; res.end(JSON.stringify({ id: 'busy' })) })
  const d = dispatcherFor(t, [s, busy], { retryOn: [503] })
  t.same(await get(d), { id: 'slow', status: 200 }, 'the caller got the first try\'s answer, not the 503')
  t.match(d.stats, { hedges: 1, hedgesWon: 0, statusRetries: 0 })
})

t.test('the first try fails while the hedge is out: the hedge answers, nothing else is sent', async (t) => {
  const failing = await slow(t, 'failing', Infinity)
  const fast = await slow(t, 'fast', 80)
  const third = await upstream(t, 'third')
  const d = dispatcherFor(t, [failing, fast, third])
  const answer = get(d)
  await new Promise((resolve) => setTimeout(resolve, 50)) // the hedge is out
  failing.server.closeAllConnections() // the first try's connection dies
  t.same(await answer, { id: 'fast', status: 200 })
  t.equal(third.received.length, 0, 'no retry beside the running hedge')
})

t.test('upstream load stays near one try per request at steady state with the adaptive delay (p95)', async (t) => {
  // Three replicas answering in 1–4 ms, one in twenty answers taking 40 ms: the p95-delay hedges about
  // the slowest 5 %, which is what the issue allows (upstream requests ÷ client requests ≤ 1.1).
  let n = 0
  const jittery: UpstreamBehaviour = (_req, res) => {
    const ms = ++n % 20 === 0 ? 40 : 1 + (n % 4)
    setTimeout(() => res.end(JSON.stringify({ id: 'r' })), ms)
  }
  const replicas = [await upstream(t, 'r1', jittery), await upstream(t, 'r2', jittery), await upstream(t, 'r3', jittery)]
  const d = dispatcherFor(t, replicas, { hedge: true, balancer: 'least-request' })
  const REQUESTS = 600
  for (let i = 0; i < REQUESTS; i += 6) await Promise.all(Array.from({ length: 6 }, async () => await get(d)))
  const upstreamRequests = replicas.reduce((sum, r) => sum + r.received.length, 0)
  const ratio = upstreamRequests / REQUESTS
  t.comment(`upstream ÷ client requests: ${ratio.toFixed(3)} (${d.stats.hedges} hedges, ${d.stats.hedgesWon} won)`)
  t.ok(ratio <= 1.1, 'at most 1.1 upstream requests per client request')
  t.ok(d.stats.hedges > 0, 'and hedging did happen (the slow answers were raced)')
})

t.test('aborted losers leak no sockets: after 2,000 hedged requests every connection is reused or closed', async (t) => {
  const s = await slow(t, 'slow', 25)
  const fast = await upstream(t, 'fast')
  // Ejection off: slow loses every race, which would eject it (see below) and end the hedging.
  const d = dispatcherFor(t, [s, fast], { hedge: { delay: 1 }, retryBudget: { ratio: 1, minPerSecond: 0, burst: 10_000 }, pool: { connections: 8 }, ejectionMs: 0 })
  for (let i = 0; i < 2000; i += 20) await Promise.all(Array.from({ length: 20 }, async () => await get(d)))
  // A loser still queued in its pool when it lost is aborted when the pool gets to it: wait for that.
  const inFlight = (): number => d.outstanding(d.instances[0]!) + d.outstanding(d.instances[1]!)
  for (let waited = 0; inFlight() > 0 && waited < 5000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20))
  const open = await new Promise<number>((resolve, reject) => s.server.getConnections((err, count) => err ? reject(err) : resolve(count)))
  t.comment(`slow upstream: ${s.received.length} tries, ${s.abandoned()} aborted, ${open} connections open; ${d.stats.hedges} hedges`)
  t.ok(d.stats.hedges >= 900, 'about every request to slow was hedged')
  t.ok(open <= 8, 'no more connections open than the pool allows')
  t.equal(inFlight(), 0, 'nothing counted in flight')
})

t.test('hedging works in panic routing: with every instance ejected, a slow try is still raced', async (t) => {
  // Each answers its first request with a 500, which ejects it (consecutiveFailures 1); then slow hangs.
  const firstFails = (then: UpstreamBehaviour): UpstreamBehaviour => {
    let first = true
    return (req, res, body) => {
      if (!first) return then(req, res, body)
      first = false
      res.statusCode = 500
      res.end(JSON.stringify({ id: 'failed' }))
    }
  }
  const s = await upstream(t, 'slow', firstFails(() => {}))
  t.teardown(() => s.server.closeAllConnections())
  const fast = await upstream(t, 'fast', firstFails((_req, res) => res.end(JSON.stringify({ id: 'fast' }))))
  const d = dispatcherFor(t, [s, fast], { consecutiveFailures: 1, maxEjectionPercent: 100, ejectionMs: 60_000, hedge: { delay: 30 } })
  t.same(await get(d), { id: 'failed', status: 500 }, 'slow answered 500 and was ejected')
  t.same(await get(d), { id: 'failed', status: 500 }, 'fast answered 500 and was ejected')
  t.equal(d.ejected.length, 2, 'both instances are ejected: panic, every instance is routed to')
  t.same(await get(d), { id: 'fast', status: 200 }, 'in panic, the request that went to slow was hedged to fast')
  t.match(d.stats, { hedges: 1, hedgesWon: 1 })
})

t.test('HedgeDelay: the cap until enough answers, then the percentile, within floor and cap; a fixed delay stays', async (t) => {
  const h = new HedgeDelay({ delayMs: undefined, percentile: 0.95, minDelayMs: 10, maxDelayMs: 1000 })
  t.equal(h.ms, 1000, 'the cap before any answer')
  for (let i = 0; i < 19; i++) h.observe(50)
  t.equal(h.ms, 1000, 'still the cap below 20 answers')
  for (let i = 0; i < 13; i++) h.observe(50)
  t.equal(h.ms, 50, 'the p95 once there are enough')
  // One answer in sixteen at 5 s (6 % > 5 %): every window of 256 has the same p95, whenever it refreshes.
  for (let i = 0; i < 512; i++) h.observe(i % 16 === 15 ? 5000 : 2)
  t.equal(h.ms, 1000, 'a tail above the cap is capped')
  for (let i = 0; i < 256; i++) h.observe(1)
  t.equal(h.ms, 10, 'a p95 below the floor is floored')
  const fixed = new HedgeDelay({ delayMs: 25, percentile: 0.95, minDelayMs: 10, maxDelayMs: 1000 })
  for (let i = 0; i < 100; i++) fixed.observe(500)
  t.equal(fixed.ms, 25, 'a fixed delay ignores the answers')
})
