import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase } from '@reg/user-service/dist/db.js'
import { UsersRepository } from '@reg/user-service/dist/users-repository.js'
import { freePorts, serviceUntil, startConsul } from '@reg/testkit'
import t from 'tap'
import { Pool } from 'undici'
import { GATEWAY_JS, startServer, USER_SERVICE_JS, whileRunning, type ServerProcess } from './fixtures/server.js'

// A list flood must not take cheap requests down (issue #16). Before paging, each GET /users over 20k
// rows sent about 9 MB; 30 connections of them pushed every replica's event loop over its health
// threshold, Consul dropped them all, and the gateway answered 503 to everything. Here: real processes
// (two user-service replicas on one SQLite file of 20,000 users, the gateway in front), 30 connections
// asking for the largest page in a loop, and a probe reading one user by id meanwhile.

const ROWS = 20_000
const FLOOD_CONNECTIONS = 30
const FLOOD_MS = 6_000
const PROBE_EVERY_MS = 50

t.test(`a flood of GET /users over ${ROWS} rows through the gateway: every GET /users/:id probe succeeds`, async (t) => {
  const agent = await startConsul({ t })
  const dir = await mkdtemp(join(tmpdir(), 'gateway-flood-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const dbPath = join(dir, 'users.db')

  // Seeded through the service's own repository, in one transaction: the API is not what is measured.
  const db = openDatabase(dbPath)
  const repository = new UsersRepository(db)
  const probeUser = db.transaction(() => {
    for (let i = 0; i < ROWS - 1; i++) repository.create({ name: `User ${i}`, email: `user${i}@example.com` })
    return repository.create({ name: 'Probe', email: 'probe@example.com' })
  })()
  db.close()

  const [gatewayPort, ...replicaPorts] = await freePorts(3) as [number, number, number]
  const replicas: ServerProcess[] = replicaPorts.map((port, n) => startServer(t, USER_SERVICE_JS, {
    CONSUL_HTTP_ADDR: agent.address, PORT: String(port), SERVICE_ID: `user-service-${n + 1}`, USERS_DB: dbPath, LOG_LEVEL: 'warn'
  }))
  await whileRunning(replicas, serviceUntil(agent.url, 'user-service', (e) => e.length === 2, { passing: true }))
  const gateway = startServer(t, GATEWAY_JS, { CONSUL_HTTP_ADDR: agent.address, PORT: String(gatewayPort), LOG_LEVEL: 'warn' })
  const all = [gateway, ...replicas]
  await whileRunning(all, serviceUntil(agent.url, 'gateway', (e) => e.length === 1, { passing: true }))

  const base = `http://127.0.0.1:${gatewayPort}`
  const flood = new Pool(base, { connections: FLOOD_CONNECTIONS, pipelining: 1 })
  const probe = new Pool(base, { connections: 1 })
  t.teardown(async () => { await Promise.all([flood.close(), probe.close()]) })

  const first = await flood.request({ method: 'GET', path: '/users' })
  t.equal(first.statusCode, 200)
  t.equal((await first.body.json() as unknown[]).length, 50, `a page, not ${ROWS} users`)

  const until = Date.now() + FLOOD_MS
  const floodStatuses = new Map<number, number>()
  let floodBytes = 0
  async function floodLoop (): Promise<void> {
    while (Date.now() < until) {
      const res = await flood.request({ method: 'GET', path: '/users?limit=100' })
      floodBytes += (await res.body.arrayBuffer()).byteLength
      floodStatuses.set(res.statusCode, (floodStatuses.get(res.statusCode) ?? 0) + 1)
    }
  }
  const probes: Array<{ status: number, ms: number }> = []
  async function probeLoop (): Promise<void> {
    while (Date.now() < until) {
      const started = Date.now()
      const res = await probe.request({ method: 'GET', path: `/users/${probeUser.id}` })
      const body = await res.body.json() as { id?: string }
      probes.push({ status: res.statusCode === 200 && body.id === probeUser.id ? 200 : res.statusCode, ms: Date.now() - started })
      await new Promise((resolve) => setTimeout(resolve, PROBE_EVERY_MS))
    }
  }
  await whileRunning(all, Promise.all([probeLoop(), ...Array.from({ length: FLOOD_CONNECTIONS }, floodLoop)]))

  const floodTotal = [...floodStatuses.values()].reduce((a, b) => a + b, 0)
  const slowest = Math.max(...probes.map((p) => p.ms))
  t.comment(`flood: ${floodTotal} list requests in ${FLOOD_MS} ms (${(floodBytes / 1e6).toFixed(1)} MB), statuses ${JSON.stringify(Object.fromEntries(floodStatuses))}; ` +
    `probes: ${probes.length}, slowest ${slowest} ms`)
  t.ok(probes.length >= 10, `the probe ran throughout (${probes.length} probes)`)
  t.same(probes.filter((p) => p.status !== 200), [], 'every probe got its user')
  t.ok(floodTotal > probes.length, 'the flood really was a flood: more list requests than probes')
  t.same([...floodStatuses.keys()], [200], 'and the flood itself was served')
  const passing = await serviceUntil(agent.url, 'user-service', () => true, { passing: true })
  t.equal(passing.length, 2, 'both replicas are still passing in Consul after the flood')
})
