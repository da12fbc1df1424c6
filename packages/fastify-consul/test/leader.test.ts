import { startConsul, testMeter } from '@reg/testkit'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import consulPlugin, { type LeaderHandle } from '../src/index.js'
import { normalizeLeaderOptions } from '../src/leader/options.js'
import { eventually } from './fixtures/consul-api.js'
import { kvGet } from './fixtures/kv.js'

// Leader election on Consul sessions, in one process (several Fastify instances): election, release,
// the lock-delay rule when a session is lost, a paused agent, a wiped agent, metrics and options.

const KEY = 'service/test/leader'

async function node (t: { teardown (fn: () => unknown): void }, address: string, meterProvider?: ReturnType<typeof testMeter>['provider']): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(consulPlugin, { service: { name: 'leader-test' }, register: false, consul: { address }, meterProvider })
  await app.ready()
  return app
}

const leaderOf = (handles: LeaderHandle[]): number[] => handles.flatMap((h, i) => h.isLeader ? [i] : [])

t.test('options: Consul\'s bounds, defaults, each bad field named with its own code', async (t) => {
  t.match(normalizeLeaderOptions('a/b', undefined), { key: 'a/b', ttl: 15_000, lockDelay: 15_000, name: 'leader:a/b' })
  t.match(normalizeLeaderOptions('a', { ttl: '10s', lockDelay: 0, value: 'me' }), { ttl: 10_000, lockDelay: 0, value: 'me' })
  for (const [key, opts, field] of [['/a', {}, 'key'], ['a', { ttl: '9s' }, 'ttl'], ['a', { lockDelay: '61s' }, 'lockDelay'], ['a', { tll: '10s' }, 'tll']] as const) {
    t.throws(() => normalizeLeaderOptions(key, opts), { code: 'FST_REG_LEADER_INVALID_OPTION', message: new RegExp(`option ${field}:`) }, field)
  }
})

t.test('one leader among three; release() hands over at once; reg_leader follows', async (t) => {
  const agent = await startConsul({ t })
  const m = testMeter(t)
  const apps = [await node(t, agent.address, m.provider), await node(t, agent.address), await node(t, agent.address)]
  const handles = apps.map((a) => a.consul.leader(KEY, { ttl: '10s', lockDelay: '15s' }))
  await eventually(async () => leaderOf(handles).length === 1, 'a leader')
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal(leaderOf(handles).length, 1, 'still exactly one')
  const first = leaderOf(handles)[0]!
  const { entry } = await kvGet(agent, KEY)
  t.ok(entry?.Session, 'the key is held by a session')
  t.equal(await m.value('reg_leader', { key: KEY }), first === 0 ? 1 : 0, 'reg_leader on the first app')

  const lost: string[] = []
  handles[first]!.on('lost', (reason) => lost.push(reason))
  const started = performance.now()
  await handles[first]!.release()
  await eventually(async () => leaderOf(handles).length === 1, 'a new leader')
  const handover = performance.now() - started
  t.comment(`handover after release(): ${Math.round(handover)} ms (lockDelay is 15 s: a release does not wait for it)`)
  t.ok(handover < 10_000, 'well under the 15 s lock delay: the key was released, not left to expire')
  t.same(lost, ['released'])
  t.notOk(handles[first]!.isLeader)
  await handles[first]!.release()
  t.pass('release() is idempotent')
})

t.test('lock-delay: a lost session drops leadership before anyone else can hold the key', async (t) => {
  const agent = await startConsul({ t })
  const apps = [await node(t, agent.address), await node(t, agent.address)]
  const handles = apps.map((a) => a.consul.leader(KEY, { ttl: '10s', lockDelay: '3s' }))
  await eventually(async () => leaderOf(handles).length === 1, 'a leader')
  const [a, b] = leaderOf(handles)[0] === 0 ? [handles[0]!, handles[1]!] : [handles[1]!, handles[0]!]
  let lostAt = 0
  let electedAt = 0
  a.on('lost', () => { lostAt = performance.now() })
  // Either may lead next (the old leader contends again with a new session): the first election counts.
  for (const h of [a, b]) h.on('elected', () => { electedAt ||= performance.now() })
  // An operator (or a partition, or the TTL) invalidates the holder's session.
  const { entry } = await kvGet(agent, KEY)
  const destroyedAt = performance.now()
  await fetch(`${agent.url}/v1/session/destroy/${entry!.Session}`, { method: 'PUT' })
  await eventually(async () => electedAt > 0, 'a new leader elected', 30_000)
  t.comment(`holder stepped down ${Math.round(lostAt - destroyedAt)} ms after the session was destroyed; next leader elected after ${Math.round(electedAt - destroyedAt)} ms`)
  t.ok(lostAt > 0 && lostAt < electedAt, 'the old leader stepped down before the new one was elected')
  t.ok(electedAt - destroyedAt >= 2900, 'nobody held the key during the 3 s lock delay')
  t.equal(leaderOf(handles).length, 1)
})

t.test('a paused agent: the leader steps down once its TTL passes unrenewed; a wiped agent: at once', async (t) => {
  const agent = await startConsul({ t })
  const [app] = [await node(t, agent.address)]
  const handle = app!.consul.leader(KEY, { ttl: '10s', lockDelay: '1s' })
  await eventually(async () => handle.isLeader, 'leader')
  const reasons: string[] = []
  handle.on('lost', (r) => reasons.push(r))
  const pausedAt = performance.now()
  await agent.pause()
  await eventually(async () => !handle.isLeader, 'stepped down', 30_000)
  const after = performance.now() - pausedAt
  agent.resume()
  t.comment(`stepped down ${Math.round(after)} ms after the agent froze (TTL 10 s)`)
  t.ok(after < 11_000, 'before TTL + lockDelay since the freeze: the earliest another process could hold the key')
  t.same(reasons, ['session not renewed within its TTL'])
  await eventually(async () => handle.isLeader, 'leader again once the agent is back', 60_000)

  // The 'lost' event, not a poll of isLeader: on a wiped agent there is no lock delay, so the handle can
  // step down and lead again with a new session between two polls 50 ms apart (a full run saw it).
  const lostBefore = reasons.length
  await agent.restart()
  await eventually(async () => reasons.length > lostBefore, 'stepped down on the wipe', 15_000)
  await eventually(async () => handle.isLeader, 'leader again on the wiped agent, with a new session', 60_000)
  t.ok((await kvGet(agent, KEY)).entry?.Session)
})
