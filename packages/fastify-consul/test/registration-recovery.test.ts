import { Writable } from 'node:stream'
import healthPlugin from '@reg/fastify-health'
import { startConsul } from '@reg/testkit'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import consulPlugin from '../src/index.js'
import { stateBecomes } from './fixtures/app.js'
import { agentService, eventually, healthService } from './fixtures/consul-api.js'

// Issue #29: a 403 is not forever. "ACL not found" is also what a token replicating to a new leader, or a
// token created a minute after the deploy, looks like: registration retries, slowly, and /health says why.

const MASTER = '7b3e1c2a-4d5f-4a6b-8c9d-0e1f2a3b4c5d'

interface Logged { app: FastifyInstance, records: () => Array<Record<string, unknown>> }

async function appWith (t: { teardown (fn: () => unknown): void }, name: string, token: string, address: string): Promise<Logged> {
  const lines: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, cb) { lines.push(...chunk.toString().split('\n').filter(Boolean)); cb() } })
  const app = Fastify({ logger: { level: 'debug', stream } })
  t.teardown(() => app.close())
  await app.register(healthPlugin, { underPressure: { maxEventLoopDelay: 0 } })
  await app.register(consulPlugin, { service: { name, id: `${name}-1` }, retry: { base: 50, cap: 600 }, deregisterTimeout: 500, consul: { address, token } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) }
}

type Health = { status: string, checks: Record<string, { status: string, output?: string }> }
async function health (app: FastifyInstance): Promise<{ code: number, body: Health }> {
  const res = await app.inject('/health')
  return { code: res.statusCode, body: res.json() as Health }
}

t.test('a token created after the first try: registered at the slow pace, /health warned meanwhile; a token never created keeps warning', async (t) => {
  const agent = await startConsul({ t, acl: { masterToken: MASTER } })
  const late = 'c0ffee00-1111-4222-8333-444455556666'
  const never = 'deadbeef-1111-4222-8333-444455556666'
  const a = await appWith(t, 'late-token', late, agent.address)
  const b = await appWith(t, 'no-token', never, agent.address)

  for (const { app } of [a, b]) {
    const seen = await eventually(async () => { const h = await health(app); return h.body.checks['consul registration']?.status === 'warning' && h }, '/health warns')
    t.equal(seen.code, 429, 'a warning: readiness says why, the app keeps serving')
    t.match(seen.body.checks['consul registration']?.output, /^not registered: .*ACL not found/, 'with Consul\'s reason')
    t.equal(app.consul.registrationError?.code, 'FST_REG_CONSUL_ACL_DENIED')
    t.equal(app.consul.state, 'registering')
  }
  const tries = (r: Logged): number => r.records().filter((l) => /^consul registration (rejected; retrying slowly|failed again; retrying)$/.test(String(l.msg))).length
  await eventually(async () => tries(a) >= 3, 'three tries before the token exists')

  // Now the operator creates the token the deploy already carries (SecretID chosen up front, as Terraform does).
  const master = { 'x-consul-token': MASTER }
  await fetch(`${agent.url}/v1/acl/policy`, { method: 'PUT', headers: master, body: JSON.stringify({ Name: 'late-write', Rules: 'service "late-token" { policy = "write" }' }) })
  const created = await fetch(`${agent.url}/v1/acl/token`, { method: 'PUT', headers: master, body: JSON.stringify({ SecretID: late, Policies: [{ Name: 'late-write' }] }) })
  t.equal(created.status, 200, 'token created')

  await stateBecomes(a.app, 'registered')
  t.equal((await agentService(agent.url, 'late-token-1', MASTER)).status, 200, 'Consul has it')
  const check = (await healthService(agent.url, 'late-token', { token: MASTER }))[0]?.Checks.find((c) => c.CheckID.startsWith('service:late-token-1:'))
  t.equal(check?.Status, 'passing', 'registered as passing: our own "not registered" warning is not advertised')
  t.equal(a.app.consul.registrationError, undefined)
  await eventually(async () => (await health(a.app)).code === 200, '/health passing again')
  const rejected = a.records().filter((l) => l.msg === 'consul registration rejected; retrying slowly')
  t.equal(rejected.length, 1, `one error line for ${tries(a)} tries`)
  t.equal(a.records().filter((l) => l.msg === 'health check "consul registration" is warning').length, 1, 'the health plugin says it once too')
  t.match(a.records().find((l) => l.msg === 'registered in consul')?.after, /ACL not found/, 'the recovery names what it recovered from')

  // Negative control: the same wait, and the token that was never created still is not registered.
  const before = tries(b)
  await eventually(async () => tries(b) > before, 'it keeps trying')
  t.equal(b.app.consul.state, 'registering')
  t.equal(b.app.consul.registrationError?.code, 'FST_REG_CONSUL_ACL_DENIED')
  t.equal((await health(b.app)).body.checks['consul registration']?.status, 'warning', 'and keeps reporting it')
  t.equal((await agentService(agent.url, 'no-token-1', MASTER)).status, 404)
  t.equal(b.records().filter((l) => l.msg === 'consul registration rejected; retrying slowly').length, 1, 'still one line')
})

t.test('an ACL agent restarting (no leader yet, tokens not bootstrapped) does not leave us unregistered', async (t) => {
  const agent = await startConsul({ t, acl: { masterToken: MASTER } })
  await agent.kill()
  const r = await appWith(t, 'reboot', MASTER, agent.address)
  await eventually(async () => r.app.consul.registrationError !== undefined, 'a first failure')
  await agent.start()
  await stateBecomes(r.app, 'registered')
  t.equal((await agentService(agent.url, 'reboot-1', MASTER)).status, 200)
  // Which answers the restarting agent gave (refused, 500 no leader, 403 ACL not found) is timing: say which.
  const codes = new Set(r.records().filter((l) => String(l.msg).startsWith('consul registration')).map((l) => l.code))
  t.comment(`failures seen while the agent came up: ${[...codes].filter(Boolean).join(', ')}`)
  t.equal(r.app.consul.registrationError, undefined)
})
