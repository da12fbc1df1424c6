import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import consulPlugin from '@reg/fastify-consul'
import { freePorts, serviceUntil, startConsul } from '@reg/testkit'
import Fastify from 'fastify'
import t from 'tap'
import { request, type Dispatcher } from 'undici'
import { startServer, whileRunning, type ServerProcess } from './fixtures/server.js'

// Issue #6's proof: real Consul, three real user-service processes, a consumer that discovers them and
// sends GETs through the discovery dispatcher, and a bounded load while each replica is restarted with
// SIGTERM in turn. The promise is zero failed requests. Then a replica is SIGKILLed under load.

interface Load {
  ok: number
  failed: Array<string>
  stop (): Promise<void>
}

/** `workers` concurrent GET loops until stop() or `maxMs` (a hard bound: this is a test, not a soak). */
function startLoad (dispatcher: Dispatcher, workers: number, maxMs: number): Load {
  const load: Load = { ok: 0, failed: [], stop: async () => {} }
  const deadline = Date.now() + maxMs
  const state = { running: true }
  const loops = Array.from({ length: workers }, async () => {
    while (state.running && Date.now() < deadline) {
      try {
        const res = await request('http://user-service/users', { dispatcher })
        await res.body.arrayBuffer()
        if (res.statusCode === 200) load.ok++
        else load.failed.push(`status ${res.statusCode}`)
      } catch (err) {
        load.failed.push(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`)
      }
    }
  })
  load.stop = async () => {
    state.running = false
    await Promise.all(loops)
  }
  return load
}

t.test('rolling restart of 3 replicas under load loses no request; a SIGKILLed one is routed around', async (t) => {
  const agent = await startConsul({ t })
  const ports = await freePorts(3)
  const db = join(mkdtempSync(join(tmpdir(), 'reg-rolling-')), 'users.db')
  const env = (i: number): Record<string, string> => ({
    PORT: String(ports[i]),
    SERVICE_ID: `user-service-${i}`,
    CONSUL_HTTP_ADDR: agent.address,
    USERS_DB: db,
    LOG_LEVEL: 'warn'
  })
  const replicas: ServerProcess[] = ports.map((_, i) => startServer(t, env(i)))
  const allPassing = (): Promise<unknown> => serviceUntil(agent.url, 'user-service', (e) => e.length === 3, { passing: true })
  await Promise.race([allPassing(), ...replicas.map((r) => whileRunning(r, new Promise(() => {})))])

  const consumer = Fastify()
  t.teardown(() => consumer.close())
  await consumer.register(consulPlugin, { service: { name: 'consumer' }, register: false, consul: { address: agent.address } })
  await consumer.ready()
  const dispatcher = consumer.consul.dispatcher('user-service')
  await dispatcher.ready

  // Phase 1: rolling restart with SIGTERM, waiting for each new replica to be passing.
  const load = startLoad(dispatcher, 8, 10_000)
  const exits: Array<number | null> = []
  for (let i = 0; i < 3; i++) {
    const old = replicas[i]!
    old.child.kill('SIGTERM')
    const exit = await old.exited
    exits.push(exit.code)
    const gone = await fetch(`${agent.url}/v1/agent/service/user-service-${i}`)
    t.equal(gone.status, 404, `replica ${i} deregistered itself`)
    await gone.arrayBuffer()
    replicas[i] = startServer(t, env(i))
    await whileRunning(replicas[i]!, allPassing())
  }
  await load.stop()
  t.same(exits, [0, 0, 0], 'every replica exited 0')
  t.comment(`rolling restart: ${load.ok} requests succeeded, ${load.failed.length} failed; retries ${dispatcher.stats.retries}`)
  t.ok(load.ok > 0, 'the load ran')
  t.same(load.failed, [], 'zero failed requests across the rolling restart')

  // Phase 2: SIGKILL one replica under load: idempotent requests are retried on another instance.
  const before = dispatcher.stats
  const load2 = startLoad(dispatcher, 8, 10_000)
  await new Promise((resolve) => setTimeout(resolve, 300))
  replicas[1]!.child.kill('SIGKILL')
  await replicas[1]!.exited
  // Keep loading until Consul has noticed (the check goes critical) or a bounded while, whichever is first.
  await Promise.race([
    serviceUntil(agent.url, 'user-service', (e) => e.length === 2, { passing: true }),
    new Promise((resolve) => setTimeout(resolve, 3000))
  ])
  await load2.stop()
  const after = dispatcher.stats
  t.comment(`SIGKILL: ${load2.ok} requests succeeded, ${load2.failed.length} failed; ${after.retries - before.retries} needed a retry, ${after.ejections - before.ejections} ejection(s)`)
  t.ok(load2.ok > 0)
  t.same(load2.failed, [], 'zero failed idempotent requests after a SIGKILL')
  t.ok(after.ejections > before.ejections, 'the dead replica was ejected')

  for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGTERM')
  const codes = await Promise.all([replicas[0]!, replicas[2]!].map(async (r) => (await r.exited).code))
  t.same(codes, [0, 0], 'survivors shut down cleanly')
})
