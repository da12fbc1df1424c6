import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { freePorts, serviceUntil, startConsul } from '@reg/testkit'
import t from 'tap'
import { registerInstance } from './fixtures/consul.js'
import { GATEWAY_JS, startServer, whileRunning } from './fixtures/server.js'

// Issue #31's crash, end to end: beside two healthy upstream instances, one instance per hostile address
// an operator (or an attacker with service:write) can put in Consul. Every gateway that watched such a
// service exited with `uncaught error: shutting down` (Invalid URL) within a request or two. The built
// gateway runs as a process, so a crash is an exit code, not a test-runner accident.

/** Addresses from which no origin can be made, from the issue: a port in the address, a zone id, a URL, a space, markup. */
const HOSTILE = ['127.0.0.1:14002', 'fe80::1%lo', 'unix:///x.sock', 'bad host', '"><svg onload=alert(1)>']
const REQUESTS = 100

t.test('instances with hostile addresses: the gateway stays up and serves from the healthy replicas', async (t) => {
  const agent = await startConsul({ t })
  const healthy = ['hostile-ok-1', 'hostile-ok-2']
  for (const id of healthy) {
    const server = createServer((_req, res) => { res.writeHead(200, { 'content-type': 'application/json', 'x-instance-id': id }).end('[]') })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }))
    await registerInstance(agent.url, { name: 'hostile', id, port: (server.address() as AddressInfo).port })
  }
  for (const [i, address] of HOSTILE.entries()) await registerInstance(agent.url, { name: 'hostile', id: `hostile-bad-${i}`, port: 14002, address })
  // All of them are in Consul before the gateway starts, so its first view of the service has them all.
  await serviceUntil(agent.url, 'hostile', (e) => e.length === healthy.length + HOSTILE.length)

  const [port] = await freePorts(1) as [number]
  const gateway = startServer(t, GATEWAY_JS, { CONSUL_HTTP_ADDR: agent.address, PORT: String(port), SERVICE_ID: 'gateway-hostile', UPSTREAM_SERVICE: 'hostile', LOG_LEVEL: 'warn' })
  await whileRunning([gateway], serviceUntil(agent.url, 'gateway', (e) => e.length === 1, { passing: true }))

  const statuses: Array<{ status: number, instance: string | null }> = []
  await whileRunning([gateway], (async () => {
    for (let i = 0; i < REQUESTS; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/users`)
      await res.arrayBuffer()
      statuses.push({ status: res.status, instance: res.headers.get('x-instance-id') })
    }
  })())
  // The armed per-try timer of a failed first try used to fire 2 s later, on an answered request, and crash.
  await whileRunning([gateway], new Promise((resolve) => setTimeout(resolve, 3_000)))

  const failed = statuses.filter((s) => s.status !== 200 || !healthy.includes(String(s.instance)))
  t.comment(`${statuses.length - failed.length} of ${statuses.length} answered by a healthy replica; failures at ${JSON.stringify(failed)}`)
  t.ok(failed.length <= HOSTILE.length, 'at most one failed try per hostile instance reaches a client')
  t.same(statuses.slice(HOSTILE.length).filter((s) => s.status !== 200 || !healthy.includes(String(s.instance))), [], `after the first ${HOSTILE.length}: 100 % from the healthy replicas`)
  t.same(new Set(statuses.map((s) => s.instance).filter((id) => id !== null)), new Set(healthy), 'both healthy replicas served')

  t.equal(gateway.child.exitCode, null, 'the gateway is still running')
  t.equal((await fetch(`http://127.0.0.1:${port}/health/live`)).status, 200, 'and alive')
  t.notMatch(gateway.stdout(), /uncaught|Reply was already sent/, 'nothing uncaught, no reply sent twice')
  gateway.child.kill('SIGTERM')
  t.same(await gateway.exited, { code: 0, signal: null }, 'and it leaves cleanly')
})
