import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePorts, serviceUntil, startConsul } from '@reg/testkit'
import t from 'tap'
import { removeCheck } from './fixtures/consul.js'
import { GATEWAY_JS, startServer, USER_SERVICE_JS, whileRunning, type ServerProcess } from './fixtures/server.js'

// End to end, with real processes only: a Consul agent, three `node dist/server.js` of @reg/user-service
// and the gateway's own built server, talking over loopback as in `pnpm dev`.

/** A GET through the gateway, as curl would send it: the status and which replica answered. */
async function get (base: string): Promise<{ status: number, instance: string | null }> {
  const res = await fetch(`${base}/users`)
  await res.arrayBuffer()
  return { status: res.status, instance: res.headers.get('x-instance-id') }
}

t.test('gateway → 3 user-service processes: every replica answers, a SIGKILLed one is routed around, SIGTERM exits 0', async (t) => {
  const agent = await startConsul({ t })
  const dir = await mkdtemp(join(tmpdir(), 'gateway-e2e-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const [gatewayPort, ...replicaPorts] = await freePorts(4) as [number, number, number, number]
  const ids = ['user-service-1', 'user-service-2', 'user-service-3']
  const common = { CONSUL_HTTP_ADDR: agent.address, USERS_DB: join(dir, 'users.db'), LOG_LEVEL: 'warn' }

  // The first replica creates the schema in the shared file; the other two start once it is registered.
  const replicas: ServerProcess[] = [startServer(t, USER_SERVICE_JS, { ...common, PORT: String(replicaPorts[0]), SERVICE_ID: ids[0]! })]
  await whileRunning(replicas, serviceUntil(agent.url, 'user-service', (e) => e.length === 1, { passing: true }))
  for (const n of [1, 2]) replicas.push(startServer(t, USER_SERVICE_JS, { ...common, PORT: String(replicaPorts[n]), SERVICE_ID: ids[n]! }))
  await whileRunning(replicas, serviceUntil(agent.url, 'user-service', (e) => e.length === 3, { passing: true }))

  const gatewayEnv = { CONSUL_HTTP_ADDR: agent.address, PORT: String(gatewayPort), SERVICE_ID: 'gateway-e2e' }
  const gateway = startServer(t, GATEWAY_JS, gatewayEnv)
  const all = [gateway, ...replicas]
  // Passing in Consul means its /health said 200, which needs the upstream check to see user-service.
  const [entry] = await whileRunning(all, serviceUntil(agent.url, 'gateway', (e) => e.length === 1, { passing: true }))
  t.same([entry!.Service.ID, entry!.Service.Port], ['gateway-e2e', gatewayPort], 'the gateway registered itself')

  const base = `http://127.0.0.1:${gatewayPort}`
  // Concurrent batches: least-request sends sequential requests at low load to whichever replica answered
  // fastest (a cold replica can wait a while for its turn, see the README's demo), while concurrent ones
  // spread over every replica, which is what a caller under load relies on. Bounded: at most 150 GETs.
  const answered = new Set<string>()
  for (let batch = 0; batch < 5 && answered.size < ids.length; batch++) {
    const results = await Promise.all(Array.from({ length: 30 }, () => get(base)))
    t.same(results.map((r) => r.status), results.map(() => 200), `batch ${batch + 1}: every GET answered 200`)
    for (const r of results) answered.add(String(r.instance))
  }
  t.same([...answered].sort(), ids, 'every replica answered at least once')

  const created = await fetch(`${base}/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Ada', email: 'ada@example.com' })
  })
  t.equal(created.status, 201)
  const ada = await created.json() as { id: string }

  // Gone without a word to Consul, which keeps it passing until its next check (removed here, so that the
  // gateway meets the dead replica before Consul does: see removeCheck).
  const killed = replicas[1]!
  await removeCheck(agent.url, ids[1]!)
  killed.child.kill('SIGKILL')
  t.same(await killed.exited, { code: null, signal: 'SIGKILL' })
  // Concurrent, so that least-request (two random choices, fewer in flight wins) spreads them over every
  // instance it still knows, the dead one included: sequential GETs would all go to the faster survivor,
  // and could pass without ever meeting the dead replica.
  const after = await Promise.all(Array.from({ length: 30 }, () => get(base)))
  t.same(after.map((r) => r.status), after.map(() => 200), 'every GET after the kill answered 200')
  t.same([...new Set(after.map((r) => String(r.instance)))].sort(), [ids[0]!, ids[2]!].sort(), 'both survivors answer; the killed replica never does')
  const read = await fetch(`${base}/users/${ada.id}`)
  t.same([read.status, await read.json()], [200, ada], 'data written before the kill is still served')

  // A second gateway on the same port cannot start: exit 1 with the reason in its log.
  const clash = startServer(t, GATEWAY_JS, { ...gatewayEnv, SERVICE_ID: 'gateway-clash' })
  t.same(await clash.exited, { code: 1, signal: null }, 'a port in use is a failed start')
  t.match(clash.logs().find((r) => r.msg === 'could not start'), { level: 60, err: { code: 'EADDRINUSE' } })

  const survivors = [gateway, replicas[0]!, replicas[2]!]
  for (const server of survivors) server.child.kill('SIGTERM')
  t.same(await Promise.all(survivors.map((s) => s.exited)), survivors.map(() => ({ code: 0, signal: null })), 'the gateway and the survivors exit 0')
  t.same(await serviceUntil(agent.url, 'gateway', (e) => e.length === 0), [], 'the gateway deregistered itself')

  const logs = gateway.logs()
  t.ok(logs.every((r) => typeof r.level === 'number' && typeof r.time === 'number'), 'every stdout line is a pino JSON record')
  t.ok(logs.some((r) => r.msg === `Server listening at ${base}`))
  // The concurrent GETs met the dead replica (refused connections), so it was ejected, and said so at warn.
  const ejected = logs.filter((r) => String(r.msg).endsWith('; ejected'))
  t.ok(ejected.length > 0, 'the killed replica was ejected')
  t.ok(ejected.every((r) => r.level === 40), 'ejections are logged at warn')
  t.ok(logs.some((r) => r.msg === 'shutting down' && r.signal === 'SIGTERM'))
  t.ok(logs.some((r) => r.msg === 'shutdown: close'), "@reg/fastify-consul's shutdown ran to the end")
  t.equal(gateway.stderr(), '')
})

t.test('a bad environment: one clear line on stderr, exit code 1', async (t) => {
  const server = startServer(t, GATEWAY_JS, { PORT: '99999', LOG_LEVEL: 'loud' })
  t.same(await server.exited, { code: 1, signal: null })
  t.equal(server.stderr(), 'gateway: invalid environment: PORT must be an integer from 0 to 65535, got "99999"; ' +
    'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"\n')
  t.equal(server.stdout(), '', 'nothing was started, so nothing was logged')
})
