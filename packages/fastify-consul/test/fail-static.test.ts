import t from 'tap'
import { startConsul } from '@reg/testkit'
import { DiscoveryRegistry } from '../src/discovery/registry.js'
import { route } from '../src/discovery/watch/routing.js'
import type { Instance } from '../src/discovery/watch/instance.js'
import { buildApp, stateBecomes } from './fixtures/app.js'
import { consulHttp, ids, register, setCheck, until, untilState } from './fixtures/discovery-consul.js'
import { recordingLogger } from './fixtures/discovery-logger.js'
import { mock } from 'node:test'
import { faultServer, healthBody } from './fixtures/discovery-fault-server.js'

// Fail static: a signal that drops (almost) everyone is routed around, an operator's maintenance never is.

const inst = (id: string, status: Instance['status'], weight = 1, maintenance = false): Instance =>
  Object.freeze({ id, service: 's', node: 'n', datacenter: 'dc1', nodeMeta: {}, address: '127.0.0.1', port: 1, host: '127.0.0.1', tags: [], meta: {}, weight: status === 'critical' ? 0 : weight, status, maintenance })

t.test('route(): the panic threshold, warning at its weight, maintenance always obeyed', async (t) => {
  const [a, b, c] = [inst('a', 'passing', 10), inst('b', 'critical'), inst('c', 'critical')]
  t.same(route([a, b, c], false, 0.5).panic, true, '1 of 3 routable is below half: panic')
  t.same(ids(route([a, b, c], false, 0.5).instances), ['a', 'b', 'c'])
  t.same(route([a, b, c], false, 0.5).instances.map((i) => i.weight), [10, 1, 1], 'in panic a failing instance weighs 1; healthy ones keep their share')
  t.same(ids(route([a, b, c], false, 0.3).instances), ['a'], 'above the threshold: healthy only')
  t.same(route([b, c], false, 0).panic, true, 'nothing routable panics whatever the threshold')
  const w = inst('w', 'warning', 1)
  t.same(ids(route([a, w], false, 0.5).instances), ['a', 'w'], 'warning is routable by default')
  t.same(ids(route([a, w], true, 0.5).instances), ['a'], 'passingOnly: 1 of 2 is not below half')
  const zeroWarning = inst('z', 'warning', 0)
  t.same(ids(route([a, zeroWarning], false, 0).instances), ['a'], 'Weights.Warning 0 is left out, as Consul DNS does')
  const m = inst('m', 'passing', 10, true)
  t.same(ids(route([m, b], false, 0.5).instances), ['b'], 'maintenance is never routed to, even in panic')
  t.same(route([m], false, 0.5), { instances: [], panic: false, routable: 0, candidates: 0, levels: [], fallback: [] }, 'only maintenance: nothing, and no panic')
})

t.test('real Consul: every replica critical → panic routes to all; maintenance stays out; healthy again → panic over', async (t) => {
  const agent = await startConsul({ t })
  for (const n of [1, 2, 3]) await register(agent, { name: 'web', id: `web-${n}`, port: 8000 + n })
  const logger = recordingLogger()
  const d = new DiscoveryRegistry({ http: consulHttp(t, agent), log: logger.log, defaults: { wait: '2s' } })
  t.teardown(() => d.close())
  const watch = d.discover('web')
  await until(watch, (i) => i.length === 3, 'three instances')
  const panics: boolean[] = []
  watch.on('panic', (p) => panics.push(p))

  // An operator's check (or an overload) turns every replica critical at once: all are still serving.
  for (const n of [1, 2, 3]) await setCheck(agent, `web-${n}`, 'fail')
  await until(watch, () => watch.panic && watch.all.every((i) => i.status === 'critical'), 'all three critical, in panic')
  t.same(ids(watch.instances), ['web-1', 'web-2', 'web-3'], 'every instance still routed to')
  t.equal(new Set(Array.from({ length: 6 }, () => watch.pick().id)).size, 3, 'picks still spread')
  t.same(watch.all.map((i) => i.status), ['critical', 'critical', 'critical'], 'all shows what Consul says')

  // consul maint on one of them: obeyed even in panic.
  const res = await fetch(`${agent.url}/v1/agent/service/maintenance/web-2?enable=true&reason=test`, { method: 'PUT' })
  t.equal(res.status, 200)
  t.same(ids(await until(watch, (i) => i.length === 2, 'web-2 in maintenance leaves')), ['web-1', 'web-3'])
  t.ok(watch.all.find((i) => i.id === 'web-2')?.maintenance)

  for (const n of [1, 2, 3]) await setCheck(agent, `web-${n}`, 'pass')
  t.same(ids(await until(watch, (i) => i.length === 2 && !watch.panic, 'healthy again')), ['web-1', 'web-3'], 'maintenance still obeyed once healthy')
  t.same(panics, [true, false], 'one event in, one out')
  t.same(logger.at('warn').map((e) => e.msg), [
    'discovery panic: too few healthy instances; routing to every instance not in maintenance',
    'discovery panic over: routing to healthy instances only'
  ], 'each transition logged once at warn')
})

// The time constant is the subject here (the old default cleared the set after 60 s), so the clock is
// the test's: Node's mock timers drive the global setTimeout that arms staleTtl's expiry, while the
// watcher's retry loop (timers/promises) and the sockets run in real time against a server that now
// drops every connection.
for (const [name, staleTtl, expect] of [
  ['the default (staleTtl infinite): 65 s into an outage the last known set is still served', undefined, 'stale'],
  ['negative control, the old staleTtl of 60 s: the same 65 s clears it', '60s', 'expired']
] as const) {
  t.test(`clock: ${name}`, async (t) => {
    let up = true
    const server = await faultServer(t, (_n, url) => !up ? { drop: true } : Number(url.searchParams.get('index') ?? 0) > 0 ? { drop: true } : { index: 5, body: healthBody('web', ['web-1']) })
    mock.timers.enable({ apis: ['setTimeout'] })
    t.teardown(() => mock.timers.reset())
    const logger = recordingLogger()
    const d = new DiscoveryRegistry({ http: consulHttp(t, { address: server.address, url: server.url }), log: logger.log, defaults: { wait: '2s', ...(staleTtl !== undefined && { staleTtl }) } })
    t.teardown(() => d.close())
    const watch = d.discover('web')
    await until(watch, (i) => i.length === 1, 'web-1')
    up = false
    await untilState(watch, 'stale')
    mock.timers.tick(65_000)
    t.equal(watch.state, expect)
    t.same(ids(watch.instances), expect === 'stale' ? ['web-1'] : [], expect === 'stale' ? 'still served' : 'cleared')
    t.equal(logger.at('error').length, expect === 'stale' ? 0 : 1, expect === 'stale' ? 'nothing was cleared' : 'the clearing is logged once')
  })
}

t.test('real Consul down, then back: the last known set is served meanwhile, and a new replica is seen within seconds', async (t) => {
  const agent = await startConsul({ t })
  await register(agent, { name: 'web', id: 'web-1', port: 8001 })
  const logger = recordingLogger()
  // Every option at its default except the wait, so the query does not block for five minutes.
  const d = new DiscoveryRegistry({ http: consulHttp(t, agent), log: logger.log, defaults: { wait: '2s' } })
  t.teardown(() => d.close())
  const watch = d.discover('web')
  await until(watch, (i) => i.length === 1, 'web-1')
  await agent.kill()
  await untilState(watch, 'stale')
  // A few failed reads in a row (backoff, rate limit), not the 65 s: the clock tests above own the window.
  await new Promise((resolve) => setTimeout(resolve, 3000))
  t.equal(watch.state, 'stale')
  t.same(ids(watch.instances), ['web-1'], 'served while Consul is down')
  t.equal(watch.pick().id, 'web-1')
  t.equal(logger.at('error').length, 0, 'nothing was cleared')

  // Consul returns (a -dev agent returns empty): a newly registered replica is seen, because while
  // stale the loop reads Consul at least every second instead of backing off to 30 s.
  await agent.start()
  await register(agent, { name: 'web', id: 'web-2', port: 8002 })
  t.same(ids(await until(watch, (i) => i.length === 1 && i[0]!.id === 'web-2', 'the new replica')), ['web-2'])
  t.equal(watch.state, 'live')
})

t.test('a replica restarted with the same service id is passing as soon as it registers', async (t) => {
  const agent = await startConsul({ t })
  const opts = { service: { name: 'same', id: 'same-1' }, check: { type: 'ttl' as const, ttl: '30s' }, selfHeal: false, consul: { address: agent.address } }
  const first = await buildApp(t, opts)
  await first.app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(first.app, 'registered')
  const oldCheck = (first.app.consul.registration?.check as { id: string }).id
  // The process dies without deregistering, and its check goes critical.
  await fetch(`${agent.url}/v1/agent/check/fail/${encodeURIComponent(oldCheck)}`, { method: 'PUT' })
  first.app.consul.deregister = async () => {} // a kill -9 sends nothing
  await first.app.server.close()

  const second = await buildApp(t, opts)
  await second.app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(second.app, 'registered')
  const newCheck = (second.app.consul.registration?.check as { id: string }).id
  t.not(newCheck, oldCheck, 'each boot has its own CheckID')
  const passing = await (await fetch(`${agent.url}/v1/health/service/same?passing`)).json() as Array<{ Service: { ID: string }, Checks: Array<{ CheckID: string }> }>
  t.same(passing.map((e) => e.Service.ID), ['same-1'], 'passing at once, not after the next probe')
  t.notOk(passing[0]!.Checks.some((c) => c.CheckID === oldCheck), '?replace-existing-checks removed the old boot\'s check')

  // Negative control: what Consul does with the same CheckID, which is why each boot has its own.
  await fetch(`${agent.url}/v1/agent/check/fail/${encodeURIComponent(newCheck)}`, { method: 'PUT' })
  const again = await fetch(`${agent.url}/v1/agent/service/register?replace-existing-checks`, {
    method: 'PUT',
    body: JSON.stringify({ ID: 'same-1', Name: 'same', Check: { CheckID: newCheck, TTL: '30s', Status: 'passing' } })
  })
  t.equal(again.status, 200)
  const kept = await (await fetch(`${agent.url}/v1/health/checks/same`)).json() as Array<{ CheckID: string, Status: string }>
  t.equal(kept.find((c) => c.CheckID === newCheck)?.Status, 'critical', 'Consul keeps a reused CheckID critical despite Status passing')
})
