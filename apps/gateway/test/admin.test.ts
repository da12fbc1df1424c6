import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import t from 'tap'
import { startFleet } from './fixtures/fleet.js'
import { startServer } from './fixtures/server.js'

// The admin listener of the built gateway (issue #24, item 7) with real processes: a Consul agent, three
// user-service replicas and the gateway with its live view on. What operators read (/metrics, the live
// view, the detailed /health) is on ADMIN_PORT and nowhere else; the public port keeps a summary /health
// for Consul's check; Consul's meta says where the metrics are; 25 viewers of the live view put no
// warning on stderr; the admin port closes with the gateway.

const LISTENER_WARNING_JS = fileURLToPath(new URL('fixtures/listener-warning.js', import.meta.url))

async function get (url: string): Promise<{ status: number, type: string | null, body: string }> {
  const res = await fetch(url)
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() }
}

/** An open event stream of the live view that counts the snapshots it has read. */
async function watcher (url: string): Promise<{ status: number, instances: () => number, close: () => void }> {
  const res = await request(url, { headers: { accept: 'text/event-stream' } })
  let latest = -1
  let buffer = ''
  res.body.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const data = buffer.slice(0, end).split('\n').find((line) => line.startsWith('data:'))
      buffer = buffer.slice(end + 2)
      if (data !== undefined) latest = (JSON.parse(data.slice(5)) as { instances: unknown[] }).instances.length
    }
  })
  return { status: res.statusCode, instances: () => latest, close: () => { res.body.destroy() } }
}

async function until (predicate: () => boolean, what: string, timeout = 20_000): Promise<void> {
  const deadline = Date.now() + timeout
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

t.test('the control: a process started as the gateway is prints a MaxListenersExceededWarning on stderr', async (t) => {
  const control = startServer(t, LISTENER_WARNING_JS, {})
  t.same(await control.exited, { code: 0, signal: null })
  t.match(control.stderr(), /MaxListenersExceededWarning/, 'so the absence below means something')
})

t.test('/metrics, the live view and the detailed /health on the admin port only; meta metrics_port; 25 viewers, no warning; closed with the app', async (t) => {
  const fleet = await startFleet(t, 'admin', { GATEWAY_DASHBOARD: 'true' })
  const admin = fleet.adminBase

  // The public port: what the world may read.
  for (const path of ['/metrics', '/_gateway/', '/_gateway/events', '/_gateway/live-view.js']) {
    t.equal((await get(`${fleet.base}${path}`)).status, 404, `${path} is not on the public port`)
  }
  const summary = await get(`${fleet.base}/health`)
  t.equal(summary.status, 200, 'the public /health stays, for Consul\'s HTTP check')
  t.same(JSON.parse(summary.body), { status: 'passing' }, 'with the verdict only: no check names or outputs')

  // The admin port: what operators read.
  const metrics = await get(`${admin}/metrics`)
  t.equal(metrics.status, 200)
  t.match(metrics.type, /^text\/plain; version=0\.0\.4/)
  t.match(metrics.body, /^reg_discovery_instances\{/m, 'the plugins\' series')
  const detailed = await get(`${admin}/health`)
  t.equal(detailed.status, 200)
  t.match(JSON.parse(detailed.body), { status: 'passing', checks: { upstream: { status: 'passing', output: '3 healthy instance(s) of user-service' } } }, 'every check\'s output')
  const page = await get(`${admin}/_gateway/`)
  t.equal(page.status, 200)
  t.match(page.type, /^text\/html/)
  t.equal((await get(`${admin}/users`)).status, 404, 'and nothing of the API')

  const services = await (await fetch(`${fleet.agent.url}/v1/agent/services`)).json() as Record<string, { Port: number, Meta: Record<string, string> }>
  t.equal(services[fleet.gatewayId]!.Meta.metrics_port, new URL(admin).port, 'Consul\'s meta says where /metrics is')
  t.equal(String(services[fleet.gatewayId]!.Port), new URL(fleet.base).port, 'the service itself stays registered at its public port')

  // 25 viewers at once, then a change every one of them must see: a replica leaves.
  const viewers = await Promise.all(Array.from({ length: 25 }, async () => await watcher(`${admin}/_gateway/events`)))
  t.same(viewers.map((v) => v.status), Array(25).fill(200), '25 event streams open')
  await until(() => viewers.every((v) => v.instances() === 3), 'every viewer\'s first snapshot')
  fleet.replicas[2]!.child.kill('SIGTERM')
  t.same(await fleet.replicas[2]!.exited, { code: 0, signal: null })
  await until(() => viewers.every((v) => v.instances() === 2), 'every viewer seeing the replica leave')
  t.pass('all 25 saw it')
  t.notMatch(fleet.gateway.stderr(), /MaxListenersExceededWarning/, 'no listener warning')
  t.equal(fleet.gateway.stderr(), '', 'nothing at all on stderr')

  // SIGTERM: the viewers' streams end, the gateway drains and exits 0, and the admin port goes with it.
  fleet.gateway.child.kill('SIGTERM')
  t.same(await fleet.gateway.exited, { code: 0, signal: null })
  for (const v of viewers) v.close()
  const after = await fetch(`${admin}/metrics`).then(() => 'open', (err: Error) => (err.cause as NodeJS.ErrnoException).code)
  t.equal(after, 'ECONNREFUSED', 'the admin port closed with the gateway')
})
