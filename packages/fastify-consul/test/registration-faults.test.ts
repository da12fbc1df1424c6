import { startConsul, startConsulCluster, type ConsulAgent } from '@reg/testkit'
import Consul from 'consul'
import Fastify from 'fastify'
import t from 'tap'
import consulPlugin from '../src/index.js'
import { buildApp, stateBecomes } from './fixtures/app.js'
import { agentService, eventually } from './fixtures/consul-api.js'

const MASTER = '7b3e1c2a-4d5f-4a6b-8c9d-0e1f2a3b4c5d'

t.test('Consul down at boot: the app serves, retries with backoff, registers once the agent appears', async (t) => {
  const agent = await startConsul({ t })
  await agent.kill()
  const { app, logs } = await buildApp(t, { service: { name: 'late', id: 'late-1' }, retry: { base: 50, cap: 400 }, consul: { address: agent.address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const res = await app.inject('/health')
  t.equal(res.statusCode, 200, 'the app serves while Consul is away')
  await eventually(async () => logs.records().filter((r) => r.msg === 'consul registration failed again; retrying').length >= 2, 'three tries')
  const first = logs.records().filter((r) => r.msg === 'consul registration failed; retrying')
  t.equal(first.length, 1, 'one warning for one failure, however many tries')
  t.equal(first[0]!.level, 40, 'logged at warn')
  t.equal(first[0]!.attempt, 1)
  t.equal(first[0]!.code, 'FST_REG_CONSUL_UNREACHABLE')
  t.type(first[0]!.delayMs, 'number')
  const again = logs.records().filter((r) => r.msg === 'consul registration failed again; retrying')
  t.same(again.slice(0, 2).map((r) => [r.level, r.attempt]), [[20, 2], [20, 3]], 'each further try at debug')
  t.equal(app.consul.registrationError?.code, 'FST_REG_CONSUL_UNREACHABLE')
  t.equal(app.consul.state, 'registering')

  await agent.start()
  await stateBecomes(app, 'registered')
  t.equal((await agentService(agent.url, 'late-1')).status, 200)
  t.equal(app.consul.registrationError, undefined, 'cleared by the success')
  const registered = logs.records().find((r) => r.msg === 'registered in consul')
  t.match(registered?.after, /unreachable/, 'the success names the failure it ends')
})

t.test('ACL: with the token it registers; the token never reaches a log line', async (t) => {
  const agent = await startConsul({ t, acl: { masterToken: MASTER } })
  const { app, logs } = await buildApp(t, { service: { name: 'acl-ok', id: 'acl-ok-1' }, consul: { address: agent.address, token: MASTER } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  t.equal((await agentService(agent.url, 'acl-ok-1', MASTER)).status, 200)
  await agent.restart()
  await eventually(async () => (await agentService(agent.url, 'acl-ok-1', MASTER)).status === 200, 'healed with the token too')
  await app.close()
  t.equal((await agentService(agent.url, 'acl-ok-1', MASTER)).status, 404, 'deregistered with the token')
  t.notOk(logs.lines.some((l) => l.includes(MASTER)), 'no log line carries the token')
})

t.test('ACL: without a token, or with a wrong one, a coded error, logged once, retried slowly; the app keeps serving', async (t) => {
  const agent = await startConsul({ t, acl: { masterToken: MASTER } })
  const wrong = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee'
  for (const token of [undefined, wrong]) {
    const { app, logs } = await buildApp(t, { service: { name: 'acl-denied' }, retry: { base: 50, cap: 400 }, consul: { address: agent.address, token } })
    await app.listen({ host: '127.0.0.1', port: 0 })
    await eventually(async () => logs.records().some((r) => r.msg === 'consul registration failed again; retrying'), 'tried again')
    const rejected = logs.records().filter((r) => r.msg === 'consul registration rejected; retrying slowly')
    t.equal((rejected[0]?.err as { code?: string } | undefined)?.code, 'FST_REG_CONSUL_ACL_DENIED', `coded error (${token ? 'wrong' : 'no'} token)`)
    t.equal(rejected.length, 1, 'logged once, though tried again')
    t.ok((rejected[0]!.delayMs as number) >= 200, 'a refusal waits at least retry.cap / 2')
    t.equal(app.consul.state, 'registering', 'still trying: not a final state')
    t.equal(app.consul.registrationError?.code, 'FST_REG_CONSUL_ACL_DENIED')
    t.equal((await app.inject('/health')).statusCode, 200, 'still serving')
    t.notOk(logs.lines.some((l) => l.includes(wrong)), 'the wrong token is not logged either')
    await app.close()
  }
})

t.test('failFast: ready() rejects when the agent is unreachable or the token unknown', async (t) => {
  const agent = await startConsul({ t, acl: { masterToken: MASTER } })
  const down = await startConsul({ t })
  await down.kill()

  const a = Fastify()
  t.teardown(() => a.close())
  a.register(consulPlugin, { service: { name: 'ff' }, failFast: true, consul: { address: down.address } })
  await t.rejects(async () => { await a.ready() }, { code: 'FST_REG_CONSUL_UNREACHABLE' })

  const b = Fastify()
  t.teardown(() => b.close())
  b.register(consulPlugin, { service: { name: 'ff' }, failFast: true, consul: { address: agent.address, token: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee' } })
  const err = await b.ready().then(() => undefined, (e: Error & { code?: string }) => e)
  t.equal(err?.code, 'FST_REG_CONSUL_ACL_DENIED')
  t.notMatch(err?.message, /aaaaaaaa/, 'the token is not in the error')

  const c = Fastify()
  t.teardown(() => c.close())
  c.register(consulPlugin, { service: { name: 'ff' }, failFast: true, consul: { address: agent.address, token: MASTER } })
  await c.ready()
  t.pass('a good token passes')

  const d = Fastify()
  t.teardown(() => d.close())
  d.register(consulPlugin, { service: { name: 'ff' }, failFast: true, consul: { address: agent.address } })
  await d.ready()
  t.pass('without a token only reachability is checked')
})

t.test('register() with failFast surfaces a 4xx instead of retrying', async (t) => {
  const agent = await startConsul({ t, acl: { masterToken: MASTER } })
  const { app } = await buildApp(t, { service: { name: 'manual-acl' }, register: false, consul: { address: agent.address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await t.rejects(app.consul.register(), { code: 'FST_REG_CONSUL_ACL_DENIED' })
  t.equal(app.consul.state, 'failed')
})

t.test('register() against an unreachable agent rejects at once with a coded error', async (t) => {
  const agent = await startConsul({ t })
  await agent.kill()
  const { app } = await buildApp(t, { service: { name: 'manual-down' }, register: false, consul: { address: agent.address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await t.rejects(app.consul.register(), { code: 'FST_REG_CONSUL_UNREACHABLE' })
})

t.test('a black-holed agent cannot hold shutdown past deregisterTimeout', async (t) => {
  const agent = await startConsul({ t })
  const { app, logs } = await buildApp(t, { service: { name: 'hole', id: 'hole-1' }, deregisterTimeout: 300, consul: { address: agent.address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  await agent.pause()
  t.teardown(() => agent.resume())
  const started = performance.now()
  await app.consul.shutdown()
  const elapsed = performance.now() - started
  t.equal(app.consul.state, 'failed', 'deregistration gave up')
  // A bound that proves termination, not a speed: far below the agent's own minutes-long silence.
  t.ok(elapsed < 5 * 300, `shutdown ended within 5 × deregisterTimeout (took ${Math.round(elapsed)} ms)`)
  const failures = logs.records().filter((r) => String(r.msg).startsWith('consul deregistration failed'))
  t.equal(failures.length, 1, 'logged once, though shutdown() and preClose both deregister')
  t.match(failures[0]?.msg, /did not answer within deregisterTimeout \(300 ms\)/, 'says what happened: a timeout, not an outage')
  t.ok(logs.records().some((r) => r.msg === 'shutdown: not deregistered; callers drop us when Consul\'s check fails'), 'does not claim to have waited for the healthy view')
})

t.test('deregistering from a stopped agent says it is unreachable, once', async (t) => {
  const agent = await startConsul({ t })
  const { app, logs } = await buildApp(t, { service: { name: 'gone', id: 'gone-1' }, consul: { address: agent.address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  await agent.kill()
  await app.consul.shutdown()
  const failures = logs.records().filter((r) => String(r.msg).startsWith('consul deregistration failed'))
  t.equal(failures.length, 1)
  t.match(failures[0]?.msg, /the agent is unreachable/)
})

t.test('a deregistration Consul refuses (token revoked meanwhile) is logged with its code', async (t) => {
  const agent = await startConsul({ t, acl: { masterToken: MASTER } })
  const master = { 'x-consul-token': MASTER }
  await fetch(`${agent.url}/v1/acl/policy`, { method: 'PUT', headers: master, body: JSON.stringify({ Name: 'revoked-write', Rules: 'service "revoked" { policy = "write" }' }) })
  const token = await (await fetch(`${agent.url}/v1/acl/token`, { method: 'PUT', headers: master, body: JSON.stringify({ Policies: [{ Name: 'revoked-write' }] }) })).json() as { AccessorID: string, SecretID: string }
  const { app, logs } = await buildApp(t, { service: { name: 'revoked', id: 'revoked-1' }, selfHeal: false, consul: { address: agent.address, token: token.SecretID } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  await fetch(`${agent.url}/v1/acl/token/${token.AccessorID}`, { method: 'DELETE', headers: master })
  await app.close()
  t.equal(app.consul.state, 'failed')
  const failed = logs.records().find((r) => String(r.msg).startsWith('consul deregistration failed'))
  t.equal((failed?.err as { code?: string } | undefined)?.code, 'FST_REG_CONSUL_ACL_DENIED')
  t.notOk(logs.lines.some((l) => l.includes(token.SecretID)), 'the token is not logged')
})

t.test('an injected client is exposed and never closed; a second registration is a coded error', async (t) => {
  const agent = await startConsul({ t })
  const [host, port] = agent.address.split(':') as [string, string]
  const client = new Consul({ host, port: Number(port) })
  const { app } = await buildApp(t, { service: { name: 'inj' }, client, consul: { address: agent.address } })
  t.equal(app.consul.client, client)
  await app.ready()
  await app.close()
  const leader = await client.status.leader()
  t.type(leader, 'string', 'the injected client still works after close')

  const twice = Fastify()
  t.teardown(() => twice.close())
  twice.register(consulPlugin, { service: { name: 'a' }, consul: { address: agent.address } })
  twice.register(consulPlugin, { service: { name: 'b' }, consul: { address: agent.address } })
  await t.rejects(async () => { await twice.ready() }, { code: 'FST_REG_CONSUL_ALREADY_REGISTERED' })
})

t.test('the built-in client talks to the same agent, with the token', async (t) => {
  const agent = await startConsul({ t, acl: { masterToken: MASTER } })
  const { app } = await buildApp(t, { service: { name: 'cli', id: 'cli-1', port: 4321 }, register: false, consul: { address: agent.address, token: MASTER } })
  await app.ready()
  await app.consul.client.agent.service.register({ name: 'via-client', id: 'via-client-1' })
  t.equal((await agentService(agent.url, 'via-client-1', MASTER)).status, 200, 'the client carries the token')
})

t.test('closing while registration retries stops the retry loop', async (t) => {
  const agent = await startConsul({ t })
  await agent.kill()
  const { app, logs } = await buildApp(t, { service: { name: 'gone', id: 'gone-1' }, retry: { base: 5000, cap: 5000 }, deregisterTimeout: 500, consul: { address: agent.address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await eventually(async () => logs.records().some((r) => r.msg === 'consul registration failed; retrying'), 'first retry scheduled')
  await app.close()
  const retries = logs.records().filter((r) => r.msg === 'consul registration failed; retrying').length
  await agent.start()
  t.equal(logs.records().filter((r) => r.msg === 'consul registration failed; retrying').length, retries, 'no retry after close')
  t.equal((await agentService(agent.url, 'gone-1')).status, 404, 'never registered after close')
})

t.test('TTL updates that cannot reach the agent are retried by the next beat', async (t) => {
  const agent = await startConsul({ t })
  const { app, logs } = await buildApp(t, { service: { name: 'beat', id: 'beat-1' }, check: { type: 'ttl', ttl: '1s' }, selfHeal: false, consul: { address: agent.address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  await agent.kill()
  await eventually(async () => logs.records().some((r) => r.msg === 'consul TTL update failed; the next beat retries'), 'a failed beat logged')
  await agent.start()
  await eventually(async () => (await agentService(agent.url, 'beat-1')).status === 200, 'the next beat finds the check gone and registers again')
})

t.test('the self-heal watch keeps going (and says so) when Consul answers oddly, e.g. a revoked token', async (t) => {
  const agent = await startConsul({ t, acl: { masterToken: MASTER } })
  const master = { 'x-consul-token': MASTER }
  await fetch(`${agent.url}/v1/acl/policy`, { method: 'PUT', headers: master, body: JSON.stringify({ Name: 'w', Rules: 'service "watched" { policy = "write" }' }) })
  const token = await (await fetch(`${agent.url}/v1/acl/token`, { method: 'PUT', headers: master, body: JSON.stringify({ Policies: [{ Name: 'w' }] }) })).json() as { AccessorID: string, SecretID: string }
  const { app, logs } = await buildApp(t, { service: { name: 'watched', id: 'watched-1' }, deregisterTimeout: 500, consul: { address: agent.address, token: token.SecretID } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  await fetch(`${agent.url}/v1/acl/token/${token.AccessorID}`, { method: 'DELETE', headers: master })
  // Touch the service so the blocking watch returns and re-asks with the (now revoked) token.
  await fetch(`${agent.url}/v1/agent/service/register`, { method: 'PUT', headers: master, body: JSON.stringify({ ID: 'watched-1', Name: 'watched', Port: 2, Tags: ['touched'] }) })
  const odd = (): Array<Record<string, unknown>> => logs.records().filter((r) => r.msg === 'consul self-heal watch got an unexpected answer')
  await eventually(async () => odd().some((r) => r.status === 403), 'a 403 noticed')
  t.match(odd()[0]?.reason, /ACL not found|Permission denied/, 'with Consul\'s reason')
  // The watch asks again every second; three more answers, the same reason, no new line.
  await new Promise((resolve) => setTimeout(resolve, 3500))
  t.equal(odd().length, 1, 'said once per change, not once per answer')
  t.equal(app.consul.state, 'registered', 'an odd answer is not a lost registration')
})

t.test('failFast with a token on an agent without ACLs passes (the token cannot be wrong)', async (t) => {
  const agent = await startConsul({ t })
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(consulPlugin, { service: { name: 'ff' }, failFast: true, consul: { address: agent.address, token: 'anything' } })
  await app.ready()
  t.pass()
})

t.test('an https address builds a TLS client without contacting the agent', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(consulPlugin, { service: { name: 'tls' }, register: false, consul: { address: 'https://127.0.0.1:1', rejectUnauthorized: false } })
  await app.ready()
  // papi keeps the parsed base URL on _opts; there is no public accessor.
  const opts = (app.consul.client as unknown as { _opts: { baseUrl: { protocol: string, port: string }, agent: unknown } })._opts
  t.equal(opts.baseUrl.protocol, 'https:')
  t.equal(opts.baseUrl.port, '1')
  t.ok(opts.agent, 'with our https.Agent (CA and verification settings)')
})

t.test('failFast: a real cluster that lost its leader, then every server, fails ready()', async (t) => {
  const cluster = await startConsulCluster({ servers: 3, clients: 1, t })
  t.teardown(() => cluster.stop())
  await cluster.ready()
  const failFast = async (address: string, what: string): Promise<void> => {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(consulPlugin, { service: { name: 'ff' }, failFast: true, consul: { address } })
    await t.rejects(async () => { await app.ready() }, { code: 'FST_REG_CONSUL_UNREACHABLE' }, what)
  }
  // Two of three servers gone: the last one has no quorum, and soon no leader (it answers 200 "").
  const [last, ...others] = cluster.servers as [ConsulAgent, ...ConsulAgent[]]
  await Promise.all(others.map((s) => s.kill()))
  const deadline = Date.now() + 60_000
  while ((await (await fetch(`${last.url}/v1/status/leader`)).text()) !== '""') {
    if (Date.now() > deadline) throw new Error('the last server kept a leader')
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  await failFast(last.address, 'a server without a leader')
  // Every server gone: the client agent cannot reach one.
  await last.kill()
  await failFast(cluster.clients[0]!.address, 'a client agent without servers')
})

t.test('closing while a registration request hangs (black-holed agent) aborts it', async (t) => {
  const agent = await startConsul({ t })
  await agent.pause()
  t.teardown(() => agent.resume())
  const { app, logs } = await buildApp(t, { service: { name: 'hang', id: 'hang-1' }, deregisterTimeout: 200, consul: { address: agent.address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.equal(app.consul.state, 'registering')
  await app.close()
  agent.resume()
  t.notOk(logs.records().some((r) => r.msg === 'consul registration failed; retrying'), 'the aborted attempt is not retried')
  t.equal((await agentService(agent.url, 'hang-1')).status, 404)
})

t.test('a 5xx on register is retried, then succeeds', async (t) => {
  const { createServer } = await import('node:http')
  let calls = 0
  // Consul answers 500 when, say, the catalog is mid-election; a stand-in makes that deterministic.
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/v1/agent/service/register')) {
      calls++
      res.writeHead(calls === 1 ? 500 : 200)
      res.end(calls === 1 ? 'No cluster leader' : '')
      return
    }
    res.writeHead(404)
    res.end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const { app, logs } = await buildApp(t, { service: { name: 'five', id: 'five-1' }, selfHeal: false, retry: { base: 10, cap: 20 }, deregisterTimeout: 200, consul: { address: `127.0.0.1:${(server.address() as { port: number }).port}` } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await stateBecomes(app, 'registered')
  const retry = logs.records().find((r) => r.msg === 'consul registration failed; retrying')
  t.equal(retry?.code, 'FST_REG_CONSUL_HTTP')
  t.equal(calls, 2)

  calls = 0
  await t.rejects(app.consul.register(), { code: 'FST_REG_CONSUL_HTTP' }, 'register() surfaces a 5xx instead of retrying')
})

t.test('an explicit register() supersedes a background retry loop', async (t) => {
  const agent = await startConsul({ t })
  await agent.kill()
  const { app, logs } = await buildApp(t, { service: { name: 'both', id: 'both-1' }, retry: { base: 5000, cap: 5000 }, consul: { address: agent.address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await eventually(async () => logs.records().some((r) => r.msg === 'consul registration failed; retrying'), 'the background loop is waiting')
  await agent.start()
  await app.consul.register()
  t.equal(app.consul.state, 'registered', 'registered now, without waiting out the 5 s backoff')
  t.equal((await agentService(agent.url, 'both-1')).status, 200)
})

t.test('a 400 from Consul (a definition it refuses) is coded and retried at the slow pace', async (t) => {
  const { createServer } = await import('node:http')
  let calls = 0
  // Real 1.8 answers 400 to fields it does not know; a stand-in keeps the plugin's own body valid.
  const server = createServer((_req, res) => { calls++; res.writeHead(400); res.end('Invalid check: TTL must be > 0') })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const { app, logs } = await buildApp(t, { service: { name: 'refused', id: 'refused-1' }, selfHeal: false, retry: { base: 10, cap: 200 }, deregisterTimeout: 200, consul: { address: `127.0.0.1:${(server.address() as { port: number }).port}` } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await eventually(async () => calls >= 3, 'tried again, and again')
  const rejected = logs.records().filter((r) => r.msg === 'consul registration rejected; retrying slowly')
  t.equal(rejected.length, 1, 'logged once')
  t.equal((rejected[0]?.err as { code?: string } | undefined)?.code, 'FST_REG_CONSUL_REGISTRATION_REJECTED')
  t.equal(app.consul.registrationError?.code, 'FST_REG_CONSUL_REGISTRATION_REJECTED')
  t.equal(app.consul.state, 'registering')
})

t.test('R5: a black-holed agent at boot does not block listen(); with failFast, ready() gives up with a code', async (t) => {
  const agent = await startConsul({ t })
  await agent.pause()
  t.teardown(() => agent.resume())
  const { app } = await buildApp(t, { service: { name: 'boot-hole', id: 'boot-hole-1' }, deregisterTimeout: 200, consul: { address: agent.address } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.equal((await app.inject('/health')).statusCode, 200, 'listening and serving while Consul hangs')
  t.equal(app.consul.state, 'registering')

  const strict = Fastify()
  t.teardown(() => strict.close())
  strict.register(consulPlugin, { service: { name: 'boot-hole' }, failFast: true, consul: { address: agent.address } })
  await t.rejects(async () => { await strict.ready() }, { code: 'FST_REG_CONSUL_UNREACHABLE' })
})

t.test('a loss noticed by both keepers (self-heal watch and TTL beat) re-registers once', async (t) => {
  const { createServer } = await import('node:http')
  let registers = 0
  let watches = 0
  let updates = 0
  // A stand-in makes the race deterministic. Timeline (ms): 0 registered; 500 the TTL beat sends an
  // update, answered 404 at 800; 600 the watch hears 404 and starts re-registering, answered at 1500;
  // at 800 the beat's 404 finds that re-registration in flight and joins it instead of starting another.
  const held: Array<import('node:http').ServerResponse> = []
  const server = createServer((req, res) => {
    const url = req.url ?? ''
    const answer = (status: number, after: number): void => { setTimeout(() => { res.writeHead(status); res.end() }, after) }
    if (url.startsWith('/v1/agent/service/register')) {
      registers++
      answer(200, registers === 2 ? 900 : 0)
    } else if (url.startsWith('/v1/agent/service/')) {
      if (++watches === 1) answer(404, 600)
      else held.push(res)
    } else if (url.startsWith('/v1/agent/check/update/')) {
      answer(++updates === 1 ? 404 : 200, updates === 1 ? 300 : 0)
    } else {
      answer(200, 0)
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const r of held) r.destroy(); server.close() })
  const { app } = await buildApp(t, { service: { name: 'twice', id: 'twice-1' }, check: { type: 'ttl', ttl: '1s' }, deregisterTimeout: 200, consul: { address: `127.0.0.1:${(server.address() as { port: number }).port}` } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await eventually(async () => updates >= 1 && registers >= 2 && app.consul.state === 'registered', 'both keepers noticed and the re-registration landed')
  t.equal(registers, 2, 'one re-registration, shared by both keepers')
})

t.test('TTL beats pause while a re-registration is in flight, and resume after it', async (t) => {
  const { createServer } = await import('node:http')
  let registers = 0
  let updates = 0
  let duringHold: number | undefined
  const held: Array<import('node:http').ServerResponse> = []
  // A stand-in holds the re-registration for 2.5 s, five beats of a 1 s TTL (one every 500 ms).
  const server = createServer((req, res) => {
    const url = req.url ?? ''
    if (url.startsWith('/v1/agent/service/register')) {
      if (++registers === 1) { res.writeHead(200); res.end(); return }
      const atStart = updates
      setTimeout(() => { duringHold = updates - atStart; res.writeHead(200); res.end() }, 2500)
    } else if (url.startsWith('/v1/agent/service/')) {
      // The self-heal watch: the agent lost us once, then it blocks.
      if (registers === 1) setTimeout(() => { res.writeHead(404); res.end() }, 300)
      else held.push(res)
    } else if (url.startsWith('/v1/agent/check/update/')) {
      updates++
      res.writeHead(200)
      res.end()
    } else {
      res.writeHead(200)
      res.end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const r of held) r.destroy(); server.close() })
  const { app } = await buildApp(t, { service: { name: 'paused', id: 'paused-1' }, check: { type: 'ttl', ttl: '1s' }, deregisterTimeout: 200, consul: { address: `127.0.0.1:${(server.address() as { port: number }).port}` } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await eventually(async () => duringHold !== undefined && app.consul.state === 'registered', 're-registered after the hold')
  t.equal(duringHold, 0, 'no TTL update while the re-registration was in flight')
  const after = updates
  await eventually(async () => updates > after, 'beats resume once registered')
})
