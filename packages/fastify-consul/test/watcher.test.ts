import t from 'tap'
import { startConsul } from '@reg/testkit'
import { TokenBucket } from '../src/util/token-bucket.js'
import { InstanceSet } from '../src/discovery/watch/instance-set.js'
import { nextIndex, requestTimeout } from '../src/consul/blocking-query.js'
import { watchSettings } from '../src/discovery/options.js'
import { Watcher, type WatcherOptions } from '../src/discovery/watch/watcher.js'
import type { WatchQuery, WatchState } from '../src/discovery/watch/service-watch.js'
import { consulHttp, countingDispatcher, deregister, register, within } from './fixtures/discovery-consul.js'
import { faultServer, healthBody, type FaultReply } from './fixtures/discovery-fault-server.js'
import { recordingLogger, type RecordingLogger } from './fixtures/discovery-logger.js'

interface Teardown { teardown (fn: () => unknown): void }

// Fast enough for tests, still the real code paths: backoff and rate limit are never off.
const QUICK = { wait: 2000, backoff: { base: 1, cap: 5 }, rateLimit: { perSecond: 1000, burst: 100 } }

// The defaults come from the one place they live; each test overrides what it exercises.
const { key: _key, query: _query, ...DEFAULT_TUNING } = watchSettings('web', {})

function watcher (t: Teardown, opts: Partial<Omit<WatcherOptions, 'query'>> & Pick<WatcherOptions, 'http' | 'log'> & { query?: Partial<WatchQuery> }): Watcher {
  const w = new Watcher({ ...DEFAULT_TUNING, ...QUICK, ...opts, query: { service: 'web', passingOnly: true, stale: false, ...opts.query } })
  t.teardown(() => w.stop())
  return w
}

function changes (w: Watcher): string[][] {
  const seen: string[][] = []
  w.subscribe({ change: (set) => seen.push(set.instances.map((i) => i.id)), state: () => {}, panic: () => {}, all: () => {} })
  return seen
}

async function untilState (w: Watcher, state: WatchState): Promise<void> {
  if (w.state === state) return
  await within(`state ${state}`, new Promise<void>((resolve) => {
    const off = w.subscribe({ change: () => {}, state: (s) => { if (s === state) { off(); resolve() } }, panic: () => {}, all: () => {} })
  }))
}

function codes (log: RecordingLogger, level: 'warn' | 'debug' | 'error'): unknown[] {
  return log.at(level).filter((e) => e.obj.code !== undefined).map((e) => e.obj.code)
}

const ok = (ids: string[], index?: number | null): FaultReply => ({ body: healthBody('web', ids), index })
const HOLD: FaultReply = { hold: true }

t.test('nextIndex follows Consul’s blocking-query rules', async (t) => {
  t.equal(nextIndex(0, 5), 5, 'first answer')
  t.equal(nextIndex(5, 7), 7, 'moved forward')
  t.equal(nextIndex(7, 7), 7, 'timed out without a change')
  t.equal(nextIndex(7, 5), 0, 'went backwards: reset for a fresh read')
  t.equal(nextIndex(7, 0), 1, 'zero is treated as 1, never as "do not block"')
  t.equal(nextIndex(7, -3), 1)
  t.equal(nextIndex(7, Number.NaN), 1)
  t.equal(nextIndex(7, undefined), 1, 'a missing header')
})

t.test('requestTimeout = wait + wait/16 + margin', async (t) => {
  t.equal(requestTimeout(300_000), 300_000 + 18_750 + 2000)
  t.equal(requestTimeout(2000), 2000 + 125 + 2000)
})

t.test('TokenBucket: burst, then the rate; reserve() returns the wait; deposits are capped', async (t) => {
  let now = 0
  const bucket = new TokenBucket({ perSecond: 10, burst: 2, now: () => now })
  t.equal(bucket.tokens, 2, 'starts full')
  t.equal(bucket.reserve(), 0)
  t.equal(bucket.reserve(), 0)
  t.equal(bucket.reserve(), 100, 'the third waits one token at 10/s')
  t.equal(bucket.reserve(), 200)
  t.notOk(bucket.tryTake(), 'in debt')
  now += 1000
  t.ok(bucket.tryTake())
  bucket.deposit(5)
  t.equal(bucket.tokens, 2, 'capped at the burst')
  t.equal(new TokenBucket({ perSecond: 1, burst: 1 }).tokens, 1, 'performance.now by default')
})

t.test('index handling on the wire: forward, backwards, zero, missing, and after errors', async (t) => {
  const script: FaultReply[] = [
    ok(['a'], 10), ok(['a'], 12), ok(['a'], 5), ok(['a'], 0), ok(['a'], null),
    { status: 500, body: 'boom' }, ok(['a'], 30), { drop: true }, ok(['a'], 20), HOLD
  ]
  const server = await faultServer(t, (n) => script[n] ?? HOLD)
  const { log } = recordingLogger()
  const w = watcher(t, { http: consulHttp(t, server), log })
  w.start()
  await within('10 requests', server.received(10))
  const sent = server.requests.map((u) => u.searchParams.get('index'))
  t.same(sent, [null, '10', '12', null, '1', '1', null, '30', null, '20'])
  t.equal(server.requests[0]!.searchParams.get('wait'), null, 'no wait without an index')
  t.equal(server.requests[1]!.searchParams.get('wait'), '2000ms')
  t.equal(w.state, 'live')
})

t.test('query parameters: passing, tag, dc, filter, stale; the service name is path-encoded', async (t) => {
  const server = await faultServer(t, () => HOLD)
  const { log } = recordingLogger()
  watcher(t, { http: consulHttp(t, server), log, query: { service: 'my svc/x', tag: 'blue', dc: 'dc2', filter: 'Service.Meta.v == "2"', stale: true } }).start()
  watcher(t, { http: consulHttp(t, server), log, query: { passingOnly: false } }).start()
  await within('2 requests', server.received(2))
  const [a, b] = [...server.requests].sort((x, y) => x.pathname.localeCompare(y.pathname))
  t.equal(a!.pathname, '/v1/health/service/my%20svc%2Fx')
  t.same(Object.fromEntries(a!.searchParams), { tag: 'blue', dc: 'dc2', filter: 'Service.Meta.v == "2"', stale: '' }, 'never ?passing: routing is decided from every instance and its checks')
  t.equal(b!.pathname, '/v1/health/service/web')
  t.same(Object.fromEntries(b!.searchParams), {})
})

t.test('bad bodies are FST_REG_DISCOVERY_BAD_RESPONSE: logged, backed off, the last good set kept', async (t) => {
  const script: FaultReply[] = [{ body: '<html>oops' }, ok(['a']), { body: '{"not":"a list"}' }, ok(['a', 'b']), HOLD]
  const server = await faultServer(t, (n) => script[n] ?? HOLD)
  const logger = recordingLogger()
  // A finite staleTtl that is never reached: recovery cancels the expiry.
  const w = watcher(t, { http: consulHttp(t, server), log: logger.log, staleTtl: 60_000 })
  const seen = changes(w)
  const states: Array<[WatchState, number]> = []
  w.subscribe({ change: () => {}, state: (s) => states.push([s, w.current.size]), panic: () => {}, all: () => {} })
  w.start()
  await w.ready
  await within('5 requests', server.received(5))
  t.same(states, [['live', 1], ['stale', 1], ['live', 2]], 'stale kept the one good instance')
  t.same(seen, [['a'], ['a', 'b']])
  t.same(codes(logger, 'warn'), ['FST_REG_DISCOVERY_BAD_RESPONSE', 'FST_REG_DISCOVERY_BAD_RESPONSE'])
  t.equal(logger.at('info').filter((e) => e.msg === 'discovery recovered').length, 1)
  t.same(logger.entries.find((e) => e.level === 'warn')!.bindings, { watch: 'web', tag: undefined, dc: undefined }, 'child logger per watch')
})

t.test('HTTP errors are coded; the ACL token never reaches a log line', async (t) => {
  const token = 'f00dfeed-0000-4000-8000-5ec7e7000000'
  const script: FaultReply[] = [{ status: 403, body: 'Permission denied' }, { status: 500, body: 'No cluster leader' }, ok([]), HOLD]
  const server = await faultServer(t, (n) => script[n] ?? HOLD)
  const logger = recordingLogger()
  const w = watcher(t, { http: consulHttp(t, server, { token }), log: logger.log })
  w.start()
  await w.ready
  t.same(w.current, InstanceSet.EMPTY, 'an empty 200 is a legitimate, empty set')
  t.same(codes(logger, 'warn'), ['FST_REG_CONSUL_ACL_DENIED'], 'the first failure of a streak at warn')
  t.same(codes(logger, 'debug'), ['FST_REG_CONSUL_HTTP'], 'the rest at debug')
  t.same(logger.at('info').map((e) => e.msg), ['no instances yet'])
  t.notOk(logger.dump().includes(token))
})

t.test('stale for staleTtl, then expired (set cleared once), then recovered', async (t) => {
  let healthy = true
  // Healthy answers come back at once (a blocking query timing out), so the outage is seen quickly.
  const server = await faultServer(t, () => healthy ? ok(['a'], 1) : { status: 500, body: 'down' })
  const logger = recordingLogger()
  const w = watcher(t, { http: consulHttp(t, server), log: logger.log, staleTtl: 200, backoff: { base: 5, cap: 20 }, rateLimit: { perSecond: 50, burst: 1 } })
  const seen = changes(w)
  w.start()
  await w.ready
  healthy = false
  await untilState(w, 'stale')
  t.equal(w.current.size, 1, 'last-known-good served while stale')
  await untilState(w, 'expired')
  t.same(w.current, InstanceSet.EMPTY)
  t.same(seen, [['a'], []], 'one change, to empty, on expiry')
  healthy = true
  await untilState(w, 'live')
  t.same(seen, [['a'], [], ['a']])
  t.same(codes(logger, 'warn'), ['FST_REG_CONSUL_HTTP'], 'warned once when entering stale')
  t.equal(logger.at('error').length, 1, 'one error on expiry')
  t.equal(logger.at('info').filter((e) => e.msg === 'discovery recovered').length, 1)
})

t.test('a server that answers instantly cannot make the loop spin', async (t) => {
  const rateLimit = { perSecond: 20, burst: 5 }
  let flip = 0
  const faults: Record<string, () => FaultReply> = {
    'bad JSON': () => ({ body: '{"truncated' }),
    'index going backwards': () => ok(['a'], flip++ % 2 === 0 ? 100 : 50),
    'index 0': () => ok(['a'], 0)
  }
  for (const [name, reply] of Object.entries(faults)) {
    await t.test(name, async (t) => {
      const server = await faultServer(t, reply)
      const logger = recordingLogger()
      const w = watcher(t, { http: consulHttp(t, server), log: logger.log, rateLimit, backoff: { base: 1, cap: 2 } })
      const started = performance.now()
      w.start()
      await within('15 requests', server.received(15))
      const elapsed = performance.now() - started
      await w.stop()
      // The token bucket admits `burst` at once, then `perSecond`; one more for rounding.
      const bound = rateLimit.burst + (rateLimit.perSecond * elapsed) / 1000 + 1
      t.ok(server.requests.length <= bound, `${server.requests.length} requests in ${Math.round(elapsed)} ms (bound ${bound.toFixed(1)})`)
      if (name === 'bad JSON') t.equal(codes(logger, 'warn')[0], 'FST_REG_DISCOVERY_BAD_RESPONSE')
      else t.equal(w.current.size, 1)
    })
  }
})

t.test('stop(): rejects ready if nothing came yet, ends a held query, a backoff and a rate-limit wait', async (t) => {
  await t.test('held query', async (t) => {
    const server = await faultServer(t, () => HOLD)
    // Built with the defaults of a bare discover('web').
    const w = new Watcher({ http: consulHttp(t, server), log: recordingLogger().log, ...watchSettings('web', {}) })
    t.teardown(() => w.stop())
    w.start()
    w.start()
    await within('first request', server.received(1))
    await w.stop()
    await t.rejects(w.ready, { code: 'FST_REG_DISCOVERY_CLOSED' })
    t.equal(w.state, 'closed')
    await w.stop()
    w.start()
    t.equal(w.state, 'closed', 'start() after stop() is a no-op')
  })
  await t.test('backoff', async (t) => {
    const server = await faultServer(t, () => ({ status: 500, body: 'down' }))
    const w = watcher(t, { http: consulHttp(t, server), log: recordingLogger().log, backoff: { base: 60_000, cap: 60_000 }, random: () => 0.99 })
    w.start()
    await within('first request', server.received(1))
    await within('stop during a 59 s backoff', w.stop())
    t.equal(server.requests.length, 1)
  })
  await t.test('rate limit', async (t) => {
    const server = await faultServer(t, () => ok(['a'], 1))
    const w = watcher(t, { http: consulHttp(t, server), log: recordingLogger().log, rateLimit: { perSecond: 0.01, burst: 1 } })
    w.start()
    await w.ready
    await within('stop during a 100 s rate-limit wait', w.stop())
    t.equal(server.requests.length, 1)
  })
})

t.test('a listener that throws is logged and does not stop the loop or the other listeners', async (t) => {
  const script: FaultReply[] = [ok(['a']), ok(['a', 'b']), HOLD]
  const server = await faultServer(t, (n) => script[n] ?? HOLD)
  const logger = recordingLogger()
  const w = watcher(t, { http: consulHttp(t, server), log: logger.log })
  w.subscribe({ change: () => { throw new Error('consumer bug') }, state: () => {}, panic: () => {}, all: () => {} })
  const seen = changes(w)
  w.start()
  await within('3 requests', server.received(3))
  t.same(seen, [['a'], ['a', 'b']])
  t.equal(logger.at('error').filter((e) => e.msg === 'discovery listener threw').length, 2)
})

t.test('real Consul: a blocking query wakes on a change instead of polling', async (t) => {
  const agent = await startConsul({ t })
  const counter = countingDispatcher(t)
  const logger = recordingLogger()
  const w = watcher(t, { http: consulHttp(t, agent, { dispatcher: counter.dispatcher }), log: logger.log, wait: 5 * 60_000 })
  const seen = changes(w)
  const changed = (): Promise<unknown> => within('a change', new Promise((resolve) => {
    const off = w.subscribe({ change: (set) => { off(); resolve(set) }, state: () => {}, panic: () => {}, all: () => {} })
  }))
  w.start()
  await w.ready
  t.same(w.current, InstanceSet.EMPTY, 'an unknown service is an empty set')
  t.same(logger.at('info').map((e) => e.msg), ['no instances yet (with ACLs on, a read without a token also comes back empty)'])
  let next = changed()
  await register(agent, { name: 'web', id: 'web-1', port: 8080 })
  await next
  next = changed()
  await deregister(agent, 'web-1')
  await next
  t.same(seen, [['web-1'], []])
  // One read, then one blocked query per change plus the one now waiting; polling would have made dozens.
  t.ok(counter.count('/v1/health/service/web') <= 5, `${counter.count('/v1/health/service/web')} requests`)
  t.equal(w.state, 'live')
})

t.test('a huge reply is a bad response: coded, backed off, the last good set kept', async (t) => {
  const huge = healthBody('web', Array.from({ length: 500 }, (_, i) => `web-${i}`))
  const script: FaultReply[] = [ok(['a']), { body: huge, index: 2 }, HOLD]
  const server = await faultServer(t, (n) => script[n] ?? HOLD)
  const logger = recordingLogger()
  const { ConsulHttp } = await import('../src/consul/http.js')
  const { resolveConnection } = await import('../src/consul/connection.js')
  // A 64 KB ceiling stands in for the 32 MB default, so the test does not push 32 MB through loopback.
  const http = new ConsulHttp({ connection: resolveConnection({ address: server.address }, {}), maxResponseSize: 64 * 1024 })
  t.teardown(() => http.close())
  t.ok(huge.length > 64 * 1024)
  const w = watcher(t, { http, log: logger.log })
  w.start()
  await within('the huge reply and the retry after it', server.received(3))
  t.equal(codes(logger, 'warn')[0], 'FST_REG_DISCOVERY_BAD_RESPONSE')
  t.same(w.current.instances.map((i) => i.id), ['a'], 'the last good set is kept')
})
