import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Instance, PriorityLevel, ServiceDispatcher, ServiceWatch } from '@reg/fastify-consul'
import { startConsul } from '@reg/testkit'
import t from 'tap'
import { request } from 'undici'
import { RequestWindow, snapshot, WINDOW_SECONDS, type DashboardSnapshot } from '../src/dashboard-snapshot.js'
import { buildGateway, instancesBecome, startReplica } from './fixtures/app.js'

function instance (id: string, status: Instance['status'], port: number, where: Partial<Pick<Instance, 'datacenter' | 'meta' | 'nodeMeta'>> = {}): Instance {
  return { id, service: 'users', node: 'n1', datacenter: 'dc1', nodeMeta: {}, address: '10.0.0.1', port, host: '10.0.0.1', tags: [], meta: {}, weight: status === 'critical' ? 0 : 1, status, maintenance: false, ...where }
}

function level (datacenter: string | undefined, load: number, more: Partial<PriorityLevel> = {}): PriorityLevel {
  return { datacenter, zone: undefined, state: 'live', routable: 2, candidates: 2, health: 1, load, ...more }
}

t.test('RequestWindow: counts per instance over the last 10 s, in one-second buckets', async (t) => {
  const w = new RequestWindow()
  w.add({ id: 'a' }, 0)
  w.add({ id: 'a' }, 500)
  w.add({ id: 'b' }, 1500)
  w.add(undefined, 1500)
  t.same([...w.counts(1500)], [['a', 2], ['b', 1]])
  t.same([...w.counts(WINDOW_SECONDS * 1000)], [['b', 1]], 'second 0 left the window')
  w.add({ id: 'c' }, WINDOW_SECONDS * 1000 + 100)
  t.same([...w.counts(WINDOW_SECONDS * 1000 + 100)].sort(), [['b', 1], ['c', 1]], 'its bucket is reused for the new second')
  t.same([...w.counts(100_000)], [], 'nothing is older than the window')
})

t.test('snapshot: Consul\'s view, the dispatcher\'s ejections and load, shares and totals', async (t) => {
  const a = instance('users-1', 'passing', 1)
  const b = instance('users-2', 'passing', 2)
  const c = instance('users-3', 'critical', 3)
  const watch = { service: 'users', all: [a, b, c], state: 'live', panic: false, lastContact: 9000, priorities: [level(undefined, 1)] } as unknown as ServiceWatch
  const dispatcher = {
    ejected: [b],
    stats: { requests: 7, retries: 2, ejections: 1, hedges: 1, hedgesWon: 1, deadlinesExceeded: 3 },
    outstanding: (i: Instance) => i === a ? 3 : 0
  } as unknown as ServiceDispatcher
  const w = new RequestWindow()
  for (const id of ['users-1', 'users-1', 'users-1', 'users-2']) w.add({ id }, 10_000)
  const snap = snapshot(watch, dispatcher, w, 10_000)
  t.same(snap.watch, { state: 'live', lastContact: 9000, staleSeconds: 0, panic: false })
  t.same(snap.instances.map((i) => [i.id, i.state, i.ejected, i.outstanding, i.share]), [
    ['users-1', 'passing', false, 3, 0.75],
    ['users-2', 'ejected', true, 0, 0.25],
    ['users-3', 'critical', false, 0, 0]
  ])
  t.same(snap.totals, { requests: 7, retries: 2, ejections: 1, hedges: 1, hedgesWon: 1, deadlinesExceeded: 3 })
  t.equal(snap.windowRequests, 4)
  t.same(snap.priorities, [{ datacenter: 'dc1', zone: null, state: 'live', routable: 2, candidates: 2, load: 1 }], 'one level, named after its instances\' datacenter')
  t.same(snap.instances.map((i) => [i.datacenter, i.zone]), [['dc1', null], ['dc1', null], ['dc1', null]], 'no zone anywhere: null')

  const stale = snapshot({ ...watch, state: 'stale', panic: true, service: 'users' } as unknown as ServiceWatch, dispatcher, new RequestWindow(), 21_000)
  t.same(stale.watch, { state: 'stale', lastContact: 9000, staleSeconds: 12, panic: true })
  t.same(stale.instances.map((i) => i.share), [0, 0, 0], 'no request in the window: no share')
  const never = snapshot({ ...watch, state: 'starting', lastContact: undefined, service: 'users' } as unknown as ServiceWatch, dispatcher, w, 1)
  t.same(never.watch, { state: 'starting', lastContact: null, staleSeconds: 0, panic: false })
})

t.test('snapshot: each instance\'s datacenter and zone, and the split over datacenters and zones', async (t) => {
  const dispatcher = { ejected: [], stats: {}, outstanding: () => 0 } as unknown as ServiceDispatcher
  const inZone = instance('users-1', 'passing', 1, { meta: { zone: 'a' }, nodeMeta: { zone: 'ignored' } })
  const nodeZone = instance('users-2', 'critical', 2, { nodeMeta: { zone: 'b' } })
  const remote = instance('users-3', 'passing', 3, { datacenter: 'dc2' })
  const unnamed = instance('users-4', 'passing', 4, { datacenter: '' })
  // The local level of a failover watch is undefined; the gateway's zone comes first, then the other zones.
  const priorities = [level(undefined, 0.7, { zone: 'a', routable: 1, candidates: 1 }), level(undefined, 0, { routable: 0, candidates: 1 }), level('dc2', 0.3, { state: 'stale' })]
  const watch = { service: 'users', all: [unnamed, inZone, nodeZone, remote], state: 'live', panic: false, lastContact: 1, priorities } as unknown as ServiceWatch
  const snap = snapshot(watch, dispatcher, new RequestWindow(), 1)
  t.same(snap.instances.map((i) => [i.id, i.datacenter, i.zone]), [
    ['users-4', '', null],
    ['users-1', 'dc1', 'a'],
    ['users-2', 'dc1', 'b'],
    ['users-3', 'dc2', null]
  ], 'service meta zone first, then node meta zone')
  t.same(snap.priorities, [
    { datacenter: 'dc1', zone: 'a', state: 'live', routable: 1, candidates: 1, load: 0.7 },
    { datacenter: 'dc1', zone: null, state: 'live', routable: 0, candidates: 1, load: 0 },
    { datacenter: 'dc2', zone: null, state: 'stale', routable: 2, candidates: 2, load: 0.3 }
  ], 'the local levels take the name of the datacenter no named level has; a stale one says so')
  t.same(JSON.parse(JSON.stringify(snap.priorities)), snap.priorities, 'plain JSON: nothing is lost on the wire')

  const onlyRemote = snapshot({ ...watch, all: [remote], priorities: [level(undefined, 0, { routable: 0, candidates: 0 }), level('dc2', 1)] } as unknown as ServiceWatch, dispatcher, new RequestWindow(), 1)
  t.same(onlyRemote.priorities.map((p) => p.datacenter), [null, 'dc2'], 'no instance says the local datacenter\'s name: null, drawn as "local"')
})

/** Reads `count` snapshot events from an event stream. */
/** The stream's snapshots, from the first, until `done` says enough. */
async function snapshots (url: string, done: (out: readonly DashboardSnapshot[]) => boolean): Promise<DashboardSnapshot[]> {
  const res = await request(url, { headers: { accept: 'text/event-stream' } })
  if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode}`)
  const out: DashboardSnapshot[] = []
  let buffer = ''
  for await (const chunk of res.body) {
    buffer += String(chunk)
    let end: number
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const message = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const data = message.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n')
      if (/^event: snapshot$/m.test(message)) out.push(JSON.parse(data) as DashboardSnapshot)
      if (done(out)) {
        res.body.destroy()
        return out
      }
    }
  }
  return out
}

t.test('GET /_gateway/ and /_gateway/events against real replicas', async (t) => {
  const agent = await startConsul({ t })
  const dir = await mkdtemp(join(tmpdir(), 'gateway-dashboard-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const ids = ['dash-1', 'dash-2']
  for (const serviceId of ids) await startReplica(t, { consulAddress: agent.address, serviceName: 'dash', serviceId, dbPath: join(dir, 'users.db') })
  const gateway = await buildGateway(t, { upstream: 'dash', consul: { address: agent.address }, register: false, dashboard: true })
  await instancesBecome(gateway, ids)
  await gateway.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(gateway.server.address() as { port: number }).port}/_gateway`

  const page = await request(`${base}/`)
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  const html = await page.body.text()
  t.match(html, /<script src="live-view.js"><\/script>/, 'the page loads its script from next to it')
  t.notMatch(html, /<script>|<style>| style=| on[a-z]+=/i, 'no inline script or style: the CSP allows none')
  const script = await request(`${base}/live-view.js`)
  t.match(script.headers['content-type'], /^text\/javascript/)
  const code = await script.body.text()
  t.match(code, /new EventSource\('events'\)/, 'the script reads the stream next to it')
  t.match(code, /dataset\.instanceId/)
  t.notMatch(code, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/, 'values are written as text, never parsed as HTML')
  const style = await request(`${base}/live-view.css`)
  t.match(style.headers['content-type'], /^text\/css/)
  t.match(await style.body.text(), /tr\[data-state="ejected"\]/)

  for (let i = 0; i < 4; i++) await (await request(`http://127.0.0.1:${(gateway.server.address() as { port: number }).port}/users`)).body.dump()
  const SPAN = 3000
  const frames = await snapshots(`${base}/events`, (out) => out.length > 1 && out.at(-1)!.at >= out[0]!.at + SPAN)
  const [first, second] = frames
  t.equal(first!.service, 'dash')
  t.equal(first!.watch.state, 'live')
  t.same(first!.instances.map((i) => [i.id, i.state]).sort(), [['dash-1', 'passing'], ['dash-2', 'passing']])
  t.same(first!.instances.map((i) => [i.datacenter, i.zone]), [['dc1', null], ['dc1', null]], 'a -dev agent\'s datacenter, no zone')
  t.same(first!.priorities, [{ datacenter: 'dc1', zone: null, state: 'live', routable: 2, candidates: 2, load: 1 }], 'no failover: one level with all the traffic')
  t.equal(first!.totals.requests, 4)
  t.equal(first!.windowRequests, 4, 'the last 10 s of requests')
  t.equal(first!.instances.reduce((sum, i) => sum + i.share, 0), 1, 'shares add up')
  // The first on connecting; then the view's one timer, shared by every viewer, ticks once a second.
  // Every watch or dispatcher event (a check's new output, an ejection) also sends one at once, so the
  // spacing of two frames says nothing (a test that asked for 900 ms between them failed under load);
  // their number over 3 s does: 2 or 3 ticks, and a few events at most, never a stream.
  t.ok(second!.at <= first!.at + 1500, 'the next within a second')
  const inSpan = frames.filter((f) => f.at > first!.at && f.at < first!.at + SPAN).length
  t.ok(inSpan >= 2 && inSpan <= 5, `about one a second: ${inSpan} in the ${SPAN} ms after the first`)

  // An open stream must not hold close() up.
  const open = request(`${base}/events`, { headers: { accept: 'text/event-stream' } })
  const res = await open
  t.equal(res.statusCode, 200)
  res.body.on('error', () => {})
  res.body.resume()
  await gateway.close()
  t.pass('closed with a stream open')
})

t.test('the dashboard is off unless asked for', async (t) => {
  const gateway = await buildGateway(t, { consul: { address: '127.0.0.1:1' } })
  t.equal((await gateway.inject('/_gateway/')).statusCode, 404)
  t.equal((await gateway.inject('/metrics')).statusCode, 200, '/metrics is on by default')
  t.match((await gateway.inject('/metrics')).body, /^reg_health_status\{/m)
  const bare = await buildGateway(t, { consul: { address: '127.0.0.1:1' }, metrics: false })
  t.equal((await bare.inject('/metrics')).statusCode, 404, 'metrics: false serves none')
})
