import { once } from 'node:events'
import type { ServerResponse } from 'node:http'
import t from 'tap'
import { request, type Dispatcher } from 'undici'
import { BalancedDispatcher } from '../src/discovery/dispatch/dispatcher.js'
import type { ServiceDispatcherOptions } from '../src/discovery/dispatch/service-dispatcher.js'
import { dispatchSettings } from '../src/discovery/options.js'
import type { Instance } from '../src/discovery/watch/instance.js'
import { upstream, within, type Upstream } from './fixtures/discovery-consul.js'
import { recordingLogger } from './fixtures/discovery-logger.js'
import { gaveUp } from './fixtures/dispatch-failed.js'
import { StaticWatch, instanceAt } from './fixtures/discovery-static-watch.js'

// #30: an ejection is a back-off, after which one request probes the instance; a good answer re-admits
// it at once. Real upstreams on loopback; a "stalled" one holds its answers while frozen, as a replica
// under SIGSTOP does (the socket accepts, nothing answers).

interface Teardown { teardown (fn: () => unknown): void }

interface Stallable extends Upstream {
  frozen: boolean
  /** Requests it received while frozen (each one a stall for the caller's attempt). */
  stalled: number
}

async function stallable (t: Teardown, id: string): Promise<Stallable> {
  const held: ServerResponse[] = []
  const state = { frozen: true, stalled: 0 }
  const u = await upstream(t, id, (_req, res) => {
    if (state.frozen) {
      state.stalled++
      held.push(res)
      return
    }
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ id }))
  })
  t.teardown(() => { for (const res of held) res.destroy() })
  // Accessors, not values: Object.assign would copy today's numbers.
  return Object.defineProperties(u, {
    frozen: { get: () => state.frozen, set: (v: boolean) => { state.frozen = v } },
    stalled: { get: () => state.stalled }
  }) as Stallable
}

const at = (u: Upstream, status: Instance['status'] = 'passing'): Instance => ({ ...instanceAt(u.id, u.port), status })

function dispatcherFor (t: Teardown, instances: readonly Instance[], opts: Partial<ServiceDispatcherOptions> = {}): { d: BalancedDispatcher, watch: StaticWatch } {
  const watch = new StaticWatch(instances)
  const d = new BalancedDispatcher({ ...dispatchSettings({ perTryTimeout: 200, consecutiveFailures: 2 }), watch, log: recordingLogger().log, random: Math.random, ...opts })
  t.teardown(() => d.close())
  return { d, watch }
}

async function get (d: Dispatcher, signal?: AbortSignal): Promise<string> {
  const res = await request('http://svc/', { dispatcher: d, signal })
  return (await res.body.json() as { id: string }).id
}

/** Sends GETs, two at a time (each must succeed), until an instance is ejected; returns its id. */
async function untilEjected (d: BalancedDispatcher): Promise<string> {
  const state = { done: false }
  const ejected = once(d.events, 'eject').finally(() => { state.done = true })
  while (!state.done) await Promise.all([get(d), get(d)])
  const [instance] = await ejected as [Instance]
  return instance.id
}

t.test('only one probe is in flight at a time, and a failed probe costs the caller a retry, not an error', async (t) => {
  const stalled = await stallable(t, 'stalled')
  const good = await upstream(t, 'good')
  const { d } = dispatcherFor(t, [at(stalled), at(good)], { ejectionMs: 300 })
  t.equal(await within('ejection', untilEjected(d)), 'stalled')
  const before = stalled.stalled
  await new Promise((resolve) => setTimeout(resolve, 400)) // the back-off is over
  // Ten requests at once: one is the probe (stalls 200 ms, then retried on good), nine go to good.
  const ids = await Promise.all(Array.from({ length: 10 }, async () => await get(d)))
  t.same(new Set(ids), new Set(['good']), 'every caller got an answer from good')
  t.equal(stalled.stalled - before, 1, 'exactly one request reached the stalled instance')
  t.match(d.stats, { probes: 1, probeFailures: 1 })
  t.same(d.ejected.map((i) => i.id), ['stalled'], 'and it stays out')
})

t.test('one per-try timeout ejects at once, and is no latency sample (P23: a thawed replica was starved for a minute)', async (t) => {
  await t.test('ejected by its first per-try timeout, not its fifth', async (t) => {
    const stalled = await stallable(t, 'stalled')
    const good = await upstream(t, 'good')
    const { d } = dispatcherFor(t, [at(stalled), at(good)], { ejectionMs: 60_000, consecutiveFailures: 5 })
    let timeoutsAtEjection = -1
    const ejected = once(d.events, 'eject').then(([, e]) => { timeoutsAtEjection = d.stats.perTryTimeouts; return (e as { reason: string }).reason })
    t.equal(await within('ejection', untilEjected(d)), 'stalled')
    t.equal(await ejected, 'timeout')
    t.equal(timeoutsAtEjection, 1, 'at the first per-try timeout (consecutiveFailures is 5)')
    t.match(d.stats, { outlierEjections: 1 })
  })
  await t.test('ejection off: a replica that thawed is picked again at once, its timeout not remembered as latency', async (t) => {
    const stalled = await stallable(t, 'stalled')
    const good = await upstream(t, 'good')
    const { d } = dispatcherFor(t, [at(stalled), at(good)], { ejectionMs: 0, balancer: 'least-request' })
    while (d.stats.perTryTimeouts === 0) await Promise.all([get(d), get(d)])
    stalled.frozen = false
    const after: string[] = []
    for (let i = 0; i < 20; i++) after.push(await get(d))
    // A 200 ms timeout taken as a peak-EWMA sample would take about 50 s to fade below good's 1–2 ms.
    t.ok(after.includes('stalled'), `it served ${after.filter((id) => id === 'stalled').length} of the next 20`)
  })
})

t.test('a recovered instance is re-admitted by its probe and gets its share back at once, least-request included', async (t) => {
  for (const balancer of ['least-request', 'weighted'] as const) {
    await t.test(balancer, async (t) => {
      const stalled = await stallable(t, 'stalled')
      const good = await upstream(t, 'good')
      const { d } = dispatcherFor(t, [at(stalled), at(good)], { ejectionMs: 300, balancer })
      t.equal(await within('ejection', untilEjected(d)), 'stalled')
      stalled.frozen = false
      await new Promise((resolve) => setTimeout(resolve, 400))
      const readmitted = once(d.events, 'readmit')
      t.equal(await get(d), 'stalled', 'the first request after the back-off is the probe, and it answers')
      const [, reason, ejectedMs] = await readmitted as [Instance, string, number]
      t.equal(reason, 'probe')
      t.ok(ejectedMs >= 300, `out at least its back-off (${Math.round(ejectedMs)} ms)`)
      // Re-admission starts its latency estimate afresh, so least-request does not hold the stall against
      // it. Four callers at a time, as under load: least-request weighs what is in flight, so one slow
      // sample on a loaded test box cannot starve it (sequential calls would make this a latency race).
      const after = (await Promise.all(Array.from({ length: 4 }, async () => {
        const ids: string[] = []
        for (let i = 0; i < 10; i++) ids.push(await get(d))
        return ids
      }))).flat()
      const share = after.filter((id) => id === 'stalled').length / after.length
      t.ok(share >= 0.1, `its share of the next 40 requests: ${share} (a fair share is 0.5; bench P23 measures it under load)`)
    })
  }
})

t.test('a flapping replica: each ejection starts further out, and each frozen spell costs its callers nothing', async (t) => {
  const stalled = await stallable(t, 'stalled')
  const good = await upstream(t, 'good')
  const { d } = dispatcherFor(t, [at(stalled), at(good)], { ejectionMs: 200 })
  const backoffs: number[] = []
  d.events.on('eject', (_i: Instance, e: { ms: number }) => backoffs.push(e.ms))
  for (let spell = 0; spell < 3; spell++) {
    stalled.frozen = true
    const before = stalled.stalled
    // get() rejects on any failure: every caller is answered, by good, while the replica is frozen.
    t.equal(await within(`ejection ${spell + 1}`, untilEjected(d)), 'stalled')
    t.ok(stalled.stalled - before <= 3, `spell ${spell + 1}: ${stalled.stalled - before} requests stuck on it before it was out`)
    stalled.frozen = false
    const state = { done: false }
    const readmitted = once(d.events, 'readmit').then(() => { state.done = true })
    while (!state.done) await get(d)
    await readmitted
  }
  // base × recent ejections: nothing was admitted for 30 s in between, so none was forgotten.
  t.same(backoffs, [200, 400, 600], 'a flapping replica backs off further each time')
})

t.test('Consul\'s word counts: critical back to passing probes at once, before the back-off ends', async (t) => {
  const stalled = await stallable(t, 'stalled')
  const good = await upstream(t, 'good')
  const { d, watch } = dispatcherFor(t, [at(stalled), at(good)], { ejectionMs: 60_000 })
  t.equal(await within('ejection', untilEjected(d)), 'stalled')
  stalled.frozen = false
  // Negative control: passing → passing (a change elsewhere) does not cut the 60 s back-off short.
  watch.set([at(stalled), at(good, 'warning')])
  for (let i = 0; i < 5; i++) t.equal(await get(d), 'good', 'still backing off')
  watch.set([at(stalled, 'critical'), at(good)])
  watch.set([at(stalled, 'passing'), at(good)])
  const readmitted = once(d.events, 'readmit')
  t.equal(await get(d), 'stalled', 'the next request probes it')
  t.equal((await readmitted)[1], 'probe')
})

t.test('a probe that ends without a verdict (the caller aborted) hands the probe to the next request', async (t) => {
  const stalled = await stallable(t, 'stalled')
  const good = await upstream(t, 'good')
  const { d } = dispatcherFor(t, [at(stalled), at(good)], { ejectionMs: 300, perTryTimeout: 0 })
  // Without a per-try timeout a frozen instance is never ejected for stalling: eject it by refusing.
  stalled.frozen = false
  await stalled.stop()
  t.equal(await within('ejection', untilEjected(d)), 'stalled')
  await stalled.start()
  stalled.frozen = true
  await new Promise((resolve) => setTimeout(resolve, 400))
  const abort = new AbortController()
  const probe = get(d, abort.signal)
  await within('the probe reaching the instance', (async () => { while (stalled.stalled === 0) await new Promise((resolve) => setTimeout(resolve, 10)) })())
  t.equal(await get(d), 'good', 'while the probe is in flight, others stay away from the instance')
  abort.abort()
  await t.rejects(probe)
  stalled.frozen = false
  const readmitted = once(d.events, 'readmit')
  t.equal(await get(d), 'stalled', 'the next request is the probe')
  t.equal((await readmitted)[1], 'probe')
  t.match(d.stats, { probes: 2, probeFailures: 0 })
})

t.test('panic: with its only instance ejected, requests still go to it, and the first answer re-admits it', async (t) => {
  const only = await stallable(t, 'only')
  only.frozen = false
  const { d } = dispatcherFor(t, [at(only)], { ejectionMs: 300 })
  await only.stop()
  const ejected = once(d.events, 'eject')
  await t.rejects(get(d), gaveUp('ECONNREFUSED'), 'refused, and nowhere else to go')
  await ejected
  await t.rejects(get(d), gaveUp('ECONNREFUSED'), 'still routed to while ejected: refusing every request would be worse')
  await only.start()
  await new Promise((resolve) => setTimeout(resolve, 400))
  const readmitted = once(d.events, 'readmit')
  t.equal(await get(d), 'only')
  t.equal((await readmitted)[0].id, 'only')
  t.same(d.ejected, [])
})

t.test('an instance that leaves the set and comes back starts afresh: no ejection, no memory of past ones (#29)', async (t) => {
  const gone = await stallable(t, 'gone')
  gone.frozen = false
  const good = await upstream(t, 'good')
  const { d, watch } = dispatcherFor(t, [at(gone), at(good)], { ejectionMs: 60_000 })
  await gone.stop()
  t.equal(await within('ejection', untilEjected(d)), 'gone')
  watch.set([at(good)]) // deregistered (a restart, a deploy)
  t.same(d.ejected, [], 'leaving ends the ejection')
  await gone.start()
  watch.set([at(gone), at(good)]) // registered again
  t.same(d.ejected, [], 'and it comes back admitted')
  const seen = new Set<string>()
  for (let i = 0; i < 6; i++) seen.add(await get(d))
  t.ok(seen.has('gone'), 'serving at once, not after the 60 s back-off')
  await gone.stop()
  const [, ejection] = await within('a new ejection', (async () => {
    const next = once(d.events, 'eject')
    while (d.ejected.length === 0) await get(d)
    return await next
  })()) as [Instance, { ms: number }]
  t.equal(ejection.ms, 60_000, 'its next ejection starts from the base: the old one was forgotten with it')
})
