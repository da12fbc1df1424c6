import t from 'tap'
import { LeaderElection } from '../src/leader/leader-election.js'
import { normalizeLeaderOptions } from '../src/leader/options.js'
import { consulHttp } from './fixtures/discovery-consul.js'
import { recordingLogger } from './fixtures/discovery-logger.js'
import { faultServer, type FaultReply } from './fixtures/discovery-fault-server.js'

// What a real agent will not do on demand: a failing renewal, a renewal that finds no session, a
// session create without an ID, a release Consul refuses, and a listener that throws.

function scripted (routes: Record<string, (count: number) => FaultReply>): (n: number, url: URL) => FaultReply {
  const counts = new Map<string, number>()
  return (_n, url) => {
    const route = url.searchParams.has('acquire') ? 'acquire' : url.searchParams.has('release') ? 'release' : url.pathname.replace(/\/s\d+$/, '')
    const count = counts.get(route) ?? 0
    counts.set(route, count + 1)
    return routes[route]?.(count) ?? { status: 404, body: '' }
  }
}

t.test('a renewal that fails is retried; one that finds no session steps down; a session without an ID is a bad response', async (t) => {
  const server = await faultServer(t, scripted({
    '/v1/session/create': (n) => n === 0 ? { body: JSON.stringify({ ID: 's1' }) } : { body: '{}' },
    acquire: () => ({ body: 'true' }),
    '/v1/kv/k': (n) => n === 0 ? { index: 5, body: JSON.stringify([{ Session: 's1' }]) } : { hold: true },
    '/v1/session/renew': (n) => n === 0 ? { status: 500, body: 'rpc error' } : { status: 404, body: 'Session id not found' }
  }))
  const logger = recordingLogger()
  const leader = new LeaderElection({ http: consulHttp(t, server), log: logger.log, settings: normalizeLeaderOptions('k', { ttl: '10s', lockDelay: 0 }) })
  t.teardown(() => leader.release())
  const lost = new Promise<string>((resolve) => leader.on('lost', resolve))
  leader.on('elected', () => { throw new Error('listener bug') })
  t.equal(await lost, 'session lost (expired, destroyed or the agent was wiped)')
  t.ok(logger.at('error').some((e) => e.msg === 'leader listener threw'), 'a throwing listener is logged, the election goes on')
  t.ok(logger.at('debug').some((e) => e.msg === 'leader session renewal failed'), 'the 500 was retried')
  await server.received(8)
  t.ok(logger.at('debug').some((e) => (e.obj.err as { code?: string } | undefined)?.code === 'FST_REG_DISCOVERY_BAD_RESPONSE'), 'create without an ID')
  t.notOk(leader.isLeader)
})

t.test('a release Consul refuses is logged; the key frees itself when the session expires', async (t) => {
  const server = await faultServer(t, scripted({
    '/v1/session/create': () => ({ body: JSON.stringify({ ID: 's2' }) }),
    acquire: () => ({ body: 'true' }),
    '/v1/kv/k': (n) => n === 0 ? { index: 5, body: JSON.stringify([{ Session: 's2' }]) } : { hold: true },
    release: () => ({ status: 500, body: 'no' })
  }))
  const logger = recordingLogger()
  const leader = new LeaderElection({ http: consulHttp(t, server), log: logger.log, settings: normalizeLeaderOptions('k', { ttl: '10s', lockDelay: 0 }) })
  await new Promise<void>((resolve) => leader.on('elected', resolve))
  await leader.release()
  t.notOk(leader.isLeader)
  t.ok(logger.at('warn').some((e) => e.msg === 'could not release the leader key; it frees itself when the session expires'))
})

t.test('a key deleted under the leader steps it down; a refused acquire or read is retried', async (t) => {
  const server = await faultServer(t, scripted({
    '/v1/session/create': () => ({ body: JSON.stringify({ ID: 's3' }) }),
    acquire: (n) => n === 0 ? { status: 500, body: 'boom' } : { body: 'true' },
    '/v1/kv/k': (n) => n === 0 ? { index: 5, body: JSON.stringify([{ Session: 's3' }]) } : n === 1 ? { status: 404, body: '' } : n === 2 ? { status: 500, body: 'boom' } : { hold: true }
  }))
  const logger = recordingLogger()
  const leader = new LeaderElection({ http: consulHttp(t, server), log: logger.log, settings: normalizeLeaderOptions('k', { ttl: '10s', lockDelay: 0 }) })
  t.teardown(() => leader.release())
  const reasons: string[] = []
  leader.on('lost', (r) => reasons.push(r))
  while (reasons.length < 2) await new Promise((resolve) => setTimeout(resolve, 20))
  t.same(reasons, ['the key was deleted', 'Consul unreachable or refused a lock call'])
  t.ok(logger.at('debug').some((e) => (e.obj.err as { code?: string } | undefined)?.code === 'FST_REG_CONSUL_HTTP'), 'the refused acquire was logged and retried')
})
