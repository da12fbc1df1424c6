import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import consulPlugin, { type DispatcherOptions, type ServiceDispatcher } from '@reg/fastify-consul'
import { freePorts, serviceUntil, startConsul, type ConsulAgent } from '@reg/testkit'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { startLoad, type Load } from './fixtures/request-loop.js'
import { SERVER_JS, startServer, whileRunning, type ServerProcess } from './fixtures/server.js'

// Issue #6's promise, proven on the exit sequence alone (issue #14): real Consul, three real user-service
// processes, and a caller that discovers them and sends GETs through the discovery dispatcher with no
// retries and no ejection, so nothing on the caller's side can hide a lost request. Each replica is
// restarted with SIGTERM in turn while the load runs, and the load demonstrably spans all three restarts.
// The negative control runs the seed's exit (deregister, exit at once: fixtures/seed-exit-server.js, the
// same code as `pnpm bench` P5's baseline) with the same caller; it must lose requests, or this file
// cannot tell a good exit from a bad one. Then a SIGKILLed replica is routed around by the retrying
// dispatcher, which is what retries are for.

const SEED_EXIT_JS = fileURLToPath(new URL('./fixtures/seed-exit-server.js', import.meta.url))
/** The caller of both rolling restarts: every failure reaches the load's count. */
const NO_RETRIES: DispatcherOptions = { retries: 0, ejectionMs: 0 }
/** Completions the load must show before the first restart and after the last one. */
const MARGIN = 200
// Concurrent GET loops of the rolling-restart load. With 8 the seed's exit lost only 1–2 requests per run
// (only those in flight at its exit fail); 24 keeps enough in flight that the negative control loses
// some every time (3–20 per run in 11 runs on a shared 2-core box) while the load stays bounded.
const WORKERS = 24

interface Replicas {
  servers: ServerProcess[]
  /**
   * SIGTERM replica i, wait for its exit, start a new one on the same port, wait until all 3 pass. Returns
   * the exit code and whether the agent still knew the old replica once it had exited.
   */
  restart (i: number): Promise<{ code: number | null, leftRegistered: boolean }>
}

/** Three replicas of `script` as service `service`, on free ports and one SQLite file, all passing. */
async function startReplicas (t: Test, agent: ConsulAgent, service: string, script: string): Promise<Replicas> {
  const ports = await freePorts(3)
  const db = join(mkdtempSync(join(tmpdir(), 'reg-rolling-')), 'users.db')
  const start = (i: number): ServerProcess => startServer(t, {
    PORT: String(ports[i]),
    SERVICE_NAME: service,
    SERVICE_ID: `${service}-${i}`,
    CONSUL_HTTP_ADDR: agent.address,
    USERS_DB: db,
    LOG_LEVEL: 'warn'
  }, script)
  const servers = ports.map((_, i) => start(i))
  const allPassing = (): Promise<unknown> => serviceUntil(agent.url, service, (e) => e.length === 3, { passing: true })
  await Promise.race([allPassing(), ...servers.map((s) => whileRunning(s, new Promise(() => {})))])
  return {
    servers,
    async restart (i) {
      servers[i]!.child.kill('SIGTERM')
      const exit = await servers[i]!.exited
      const entry = await fetch(`${agent.url}/v1/agent/service/${service}-${i}`)
      await entry.arrayBuffer()
      servers[i] = start(i)
      await whileRunning(servers[i]!, allPassing())
      return { code: exit.code, leftRegistered: entry.status !== 404 }
    }
  }
}

/** A consumer app (not registered) and its dispatcher over `service`; closed on teardown. */
async function caller (t: Test, agent: ConsulAgent, service: string, opts: DispatcherOptions): Promise<ServiceDispatcher> {
  const consumer = Fastify()
  t.teardown(() => consumer.close())
  await consumer.register(consulPlugin, { service: { name: `${service}-caller` }, register: false, consul: { address: agent.address } })
  await consumer.ready()
  const dispatcher = consumer.consul.dispatcher(service, opts)
  await dispatcher.ready
  return dispatcher
}

interface RollingRestart {
  load: Load
  exits: Array<{ code: number | null, leftRegistered: boolean }>
  /** Completions counted when the third replica's replacement was passing. */
  okAtLastRestart: number
  replicas: Replicas
}

/** Rolls 3 replicas of `script` under a no-retry load that starts before the first and ends after the last restart. */
async function rollingRestart (t: Test, agent: ConsulAgent, service: string, script: string): Promise<RollingRestart> {
  const replicas = await startReplicas(t, agent, service, script)
  const dispatcher = await caller(t, agent, service, NO_RETRIES)
  const load = startLoad(`http://${service}/users`, dispatcher, WORKERS, 90_000)
  t.teardown(() => load.stop())
  await load.reach(MARGIN)
  const exits: RollingRestart['exits'] = []
  for (let i = 0; i < 3; i++) exits.push(await replicas.restart(i))
  const okAtLastRestart = load.ok
  // Keep loading until the new set has answered MARGIN more: the load outlived the last restart.
  await load.reach(okAtLastRestart + MARGIN)
  await load.stop()
  t.comment(`${service}: ${load.ok} requests succeeded (${load.ok - okAtLastRestart} after the third restart), ${load.failed.length} failed; retries ${dispatcher.stats.retries}`)
  return { load, exits, okAtLastRestart, replicas }
}

const agent = await startConsul({ t })

t.test('rolling restart of 3 replicas under a no-retry load loses no request', async (t) => {
  const run = await rollingRestart(t, agent, 'user-service', SERVER_JS)
  t.same(run.exits.map((e) => e.code), [0, 0, 0], 'every replica exited 0')
  t.same(run.exits.map((e) => e.leftRegistered), [false, false, false], 'and deregistered itself first')
  t.ok(run.okAtLastRestart >= MARGIN, 'requests completed before the first restart')
  t.ok(run.load.ok > run.okAtLastRestart, 'requests completed after the third replica\'s restart finished')
  t.same(run.load.failed, [], 'zero failed requests across the rolling restart, with no retry to hide one')

  // A SIGKILLed replica cannot drain: idempotent requests are retried on another instance, and it is ejected.
  const dispatcher = await caller(t, agent, 'user-service', {})
  const load = startLoad('http://user-service/users', dispatcher, 8, 30_000)
  t.teardown(() => load.stop())
  await load.reach(MARGIN)
  const killed = run.replicas.servers[1]!
  killed.child.kill('SIGKILL')
  await killed.exited
  const okAtKill = load.ok
  // Keep loading until Consul has noticed (the check goes critical) or a bounded while, whichever is first.
  await Promise.race([
    serviceUntil(agent.url, 'user-service', (e) => e.length === 2, { passing: true }),
    new Promise((resolve) => setTimeout(resolve, 3000))
  ])
  await load.reach(okAtKill + MARGIN)
  await load.stop()
  const stats = dispatcher.stats
  t.comment(`SIGKILL: ${load.ok} requests succeeded, ${load.failed.length} failed; ${stats.retries} needed a retry, ${stats.ejections} ejection(s)`)
  t.ok(load.ok > okAtKill, 'requests completed after the kill')
  t.same(load.failed, [], 'zero failed idempotent requests after a SIGKILL')
  t.ok(stats.ejections > 0, 'the dead replica was ejected')

  const survivors = [run.replicas.servers[0]!, run.replicas.servers[2]!]
  for (const s of survivors) s.child.kill('SIGTERM')
  t.same(await Promise.all(survivors.map(async (s) => (await s.exited).code)), [0, 0], 'survivors shut down cleanly')
})

t.test('negative control: the seed\'s exit (deregister, exit at once) with the same caller loses requests', async (t) => {
  const run = await rollingRestart(t, agent, 'seed-service', SEED_EXIT_JS)
  t.ok(run.load.ok > run.okAtLastRestart, 'the load spanned the three restarts here too')
  // If the seed's exit lost nothing, the test above could pass with it too: it would prove nothing.
  t.ok(run.load.failed.length > 0, `the seed's exit lost requests (${run.load.failed.length}), so the test above discriminates`)
  for (const s of run.replicas.servers) s.child.kill('SIGTERM')
  await Promise.all(run.replicas.servers.map((s) => s.exited))
})
