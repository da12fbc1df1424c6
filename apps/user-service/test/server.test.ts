import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePorts, serviceUntil, startConsul } from '@reg/testkit'
import t from 'tap'
import { startServer, whileRunning } from './fixtures/server.js'

// The built server as a real process against a real Consul agent: what `pnpm start` and issue #6 run.

/** The agent's own record of a service it registered (`/v1/agent/service/:id`), as far as these tests read it. */
async function agentService (agentUrl: string, id: string): Promise<{ Meta: Record<string, string> }> {
  const res = await fetch(`${agentUrl}/v1/agent/service/${encodeURIComponent(id)}`)
  if (!res.ok) throw new Error(`GET /v1/agent/service/${id}: ${res.status} ${await res.text()}`)
  return await res.json() as { Meta: Record<string, string> }
}

t.test('registers passing in Consul, serves, and on SIGTERM deregisters and exits 0', async (t) => {
  const agent = await startConsul({ t })
  const [port, adminPort] = await freePorts(2) as [number, number]
  const dir = await mkdtemp(join(tmpdir(), 'user-service-server-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const env = { PORT: String(port), ADMIN_PORT: String(adminPort), CONSUL_HTTP_ADDR: agent.address, USERS_DB: join(dir, 'users.db') }
  const server = startServer(t, env)

  const [entry] = await whileRunning(server, serviceUntil(agent.url, 'user-service', (e) => e.length === 1, { passing: true }))
  t.equal(entry!.Service.Port, port, 'registered with the bound port')
  t.equal(entry!.Service.Address, '127.0.0.1', 'and the bound address (HOST defaults to 127.0.0.1)')
  const serviceId = entry!.Service.ID
  t.equal((await agentService(agent.url, serviceId)).Meta.zone, undefined, 'no REG_ZONE: no zone in its meta')
  t.equal((await agentService(agent.url, serviceId)).Meta.metrics_port, String(adminPort), 'where /metrics is: the admin port')

  const base = `http://127.0.0.1:${port}`
  const created = await fetch(`${base}/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Ada', email: 'ada@example.com' })
  })
  t.equal(created.status, 201)
  t.equal(created.headers.get('x-instance-id'), serviceId, 'x-instance-id is the Consul service id')
  const ada = await created.json() as { id: string }
  const read = await fetch(`${base}/users/${ada.id}`)
  t.equal(read.status, 200)
  t.same(await read.json(), ada)
  const health = await fetch(`${base}/health`)
  t.equal(health.status, 200)
  t.same(await health.json(), { status: 'passing' }, 'the public /health, for Consul\'s check: the verdict only')
  const publicMetrics = await fetch(`${base}/metrics`)
  t.equal(publicMetrics.status, 404, '/metrics is not on the public port')
  await publicMetrics.arrayBuffer()
  // The admin port: what operators read.
  const admin = `http://127.0.0.1:${adminPort}`
  const metrics = await fetch(`${admin}/metrics`)
  t.equal(metrics.status, 200)
  t.match(await metrics.text(), /^reg_health_status\{/m, 'the plugins\' series on the admin port')
  const detailed = await fetch(`${admin}/health`)
  t.match(await detailed.json(), { status: 'passing', checks: { database: { status: 'passing', critical: true } } }, 'and the detailed /health')
  const noApi = await fetch(`${admin}/users`)
  t.equal(noApi.status, 404, 'and nothing of the API')
  await noApi.arrayBuffer()

  // A second process on the same port cannot start: exit 1, with the reason in its log, and nothing registered.
  const clash = startServer(t, { ...env, ADMIN_PORT: '0', SERVICE_ID: 'clash' })
  t.same(await clash.exited, { code: 1, signal: null }, 'a port in use is a failed start')
  t.match(clash.logs().find((r) => r.msg === 'could not start'), { level: 60, err: { code: 'EADDRINUSE' } }, 'logged at fatal with the cause')

  server.child.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null }, 'a graceful shutdown exits 0')
  t.same(await serviceUntil(agent.url, 'user-service', (e) => e.length === 0), [], 'deregistered, not merely critical')
  t.equal(await fetch(`${admin}/health`).then(() => 'open', (err: Error) => (err.cause as NodeJS.ErrnoException).code), 'ECONNREFUSED', 'the admin port closed with it')

  const logs = server.logs()
  t.ok(logs.every((r) => typeof r.level === 'number' && typeof r.time === 'number'), 'every stdout line is a pino JSON record')
  t.ok(logs.some((r) => r.msg === `Server listening at ${base}`), 'listening is logged with the URL')
  t.ok(logs.some((r) => r.msg === 'shutting down' && r.signal === 'SIGTERM'), 'the signal is logged')
  t.equal(server.stderr(), '')
})

t.test('REG_ZONE: registered as the instance\'s meta zone, where a caller with locality looks for it', async (t) => {
  const agent = await startConsul({ t })
  const [port] = await freePorts(1) as [number]
  const server = startServer(t, { PORT: String(port), CONSUL_HTTP_ADDR: agent.address, USERS_DB: ':memory:', SERVICE_ID: 'user-service-zoned', REG_ZONE: 'eu-west-1a' })
  await whileRunning(server, serviceUntil(agent.url, 'user-service', (e) => e.length === 1, { passing: true }))
  t.equal((await agentService(agent.url, 'user-service-zoned')).Meta.zone, 'eu-west-1a')
  server.child.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
  t.equal(server.stderr(), '')
})

t.test('a bad environment: one clear line on stderr, exit code 1', async (t) => {
  const server = startServer(t, { PORT: 'abc', LOG_LEVEL: 'loud' })
  t.same(await server.exited, { code: 1, signal: null })
  t.equal(server.stderr(), 'user-service: invalid environment: PORT must be an integer from 0 to 65535, got "abc"; ' +
    'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"\n')
  t.equal(server.stdout(), '', 'nothing was started, so nothing was logged')
})
