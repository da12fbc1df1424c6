import { EventEmitter } from 'node:events'
import { startConsul } from '@reg/testkit'
import type { LeaderHandle } from '@reg/fastify-consul'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import userService, { type UserServiceOptions } from '../src/app.js'
import { openDatabase } from '../src/db.js'
import { maintenanceJob } from '../src/maintenance-job.js'

// The sample's use of Consul KV and sessions, against a real agent: the default page size from
// config/user-service/pageSize (live, refused when out of range, ?limit= still wins), and the
// maintenance job on the leader of service/user-service/leader only, with reg_leader in /metrics.

async function app (t: { teardown (fn: () => unknown): void }, address: string, opts: UserServiceOptions = {}): Promise<FastifyInstance> {
  const fastify = Fastify()
  t.teardown(() => fastify.close())
  await fastify.register(userService, { consul: { address }, register: false, health: { underPressure: { maxEventLoopDelay: 0 } }, ...opts })
  await fastify.ready()
  return fastify
}

async function until (what: string, probe: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await probe()) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}

const put = async (url: string, key: string, value: string): Promise<void> => {
  const res = await fetch(`${url}/v1/kv/${key}`, { method: 'PUT', body: value })
  if (res.status !== 200) throw new Error(`kv put ${res.status}`)
}

t.test('page size from Consul KV: live, ?limit= wins, a bad value refused and the old one kept', async (t) => {
  const agent = await startConsul({ t })
  await put(agent.url, 'config/user-service/pageSize', '3')
  const service = await app(t, agent.address)
  for (let i = 0; i < 6; i++) {
    await service.inject({ method: 'POST', url: '/users', payload: { name: `u${i}`, email: `u${i}@example.com` } })
  }
  const count = async (query = ''): Promise<number> => (await service.inject(`/users${query}`)).json<unknown[]>().length
  t.equal(await count(), 3, 'the page size from KV')
  t.equal(await count('?limit=5'), 5, '?limit= still wins')
  t.match((await service.inject('/users')).headers.link, /limit=3&/, 'the next link carries the page size used')

  await put(agent.url, 'config/user-service/pageSize', '2')
  await until('the new page size', async () => await count() === 2)

  await put(agent.url, 'config/user-service/pageSize', '500')
  await until('the refusal', async () => service.consul.config?.refused !== undefined)
  t.equal(await count(), 2, 'the last good page size stays')
  await until('/health warning', async () => (await service.inject('/health')).statusCode === 429)
  const health = (await service.inject('/health')).json<{ checks: Record<string, { output: string }> }>()
  t.match(health.checks.config?.output, 'config/user-service/pageSize')
  t.match((await service.inject('/metrics')).body, /^reg_config_refusals_total\{key="config\/user-service\/pageSize"[^}]*\} 1$/m)
})

t.test('the maintenance job runs on the leader only; reg_leader in /metrics; handed over on close', async (t) => {
  const agent = await startConsul({ t })
  const a = await app(t, agent.address)
  const b = await app(t, agent.address)
  const gauge = async (s: FastifyInstance): Promise<string | undefined> =>
    /^reg_leader\{key="service\/user-service\/leader"[^}]*\} ([01])$/m.exec((await s.inject('/metrics')).body)?.[1]
  await until('one leader', async () => [await gauge(a), await gauge(b)].sort().join() === '0,1')
  const [leader, follower] = await gauge(a) === '1' ? [a, b] : [b, a]
  await leader.close()
  await until('the follower leads', async () => await gauge(follower) === '1', 5000)
  t.pass('handed over within 5 s of close (the key is released in preClose)')
})

t.test('maintenanceJob: runs while leader, stops when not', async (t) => {
  const db = openDatabase(':memory:')
  t.teardown(() => db.close())
  const events = new EventEmitter()
  let isLeader = false
  // A stand-in handle: only the two events and isLeader matter to the job.
  const leader = Object.defineProperties(events, { key: { value: 'k' }, isLeader: { get: () => isLeader } }) as unknown as LeaderHandle
  const logs: string[] = []
  const log = { info: (_o: unknown, m: string) => logs.push(m), debug: () => {}, warn: (_o: unknown, m: string) => logs.push(m) } as never
  const job = maintenanceJob(leader, db, 20, log)
  await new Promise((resolve) => setTimeout(resolve, 60))
  t.equal(job.runs, 0, 'nothing while a follower')
  isLeader = true
  events.emit('elected')
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.ok(job.runs >= 2, `ran ${job.runs} times as the leader`)
  // Leadership gone before the 'lost' event arrives (the TTL ran out between two timers): the run checks.
  isLeader = false
  const unsure = job.runs
  await new Promise((resolve) => setTimeout(resolve, 80))
  t.equal(job.runs, unsure, 'a timer that fires after leadership ended does not run')
  events.emit('lost', 'released')
  const after = job.runs
  await new Promise((resolve) => setTimeout(resolve, 80))
  t.equal(job.runs, after, 'stopped at once when leadership was lost')
  job.stop()
  t.same(logs, ['leader: maintenance job started', 'not the leader: maintenance job stopped'])

  // A database that fails: the run is logged, the job goes on.
  const broken = openDatabase(':memory:')
  broken.close()
  const failing = maintenanceJob(leader, broken, 1000, log)
  isLeader = true
  events.emit('elected')
  failing.stop()
  t.equal(logs.at(-1), 'maintenance job failed')
})
