import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import consulPlugin from '@reg/fastify-consul'
import { freePorts, serviceUntil, type ConsulAgent } from '@reg/testkit'
import Fastify, { type FastifyInstance } from 'fastify'
import { request, type Dispatcher } from 'undici'

export const USER_SERVICE = join(dirname(fileURLToPath(import.meta.resolve('@reg/user-service'))), 'server.js')
// Always the compiled script (from src/ under tap, ../dist is dist/ too): a child started by path gets
// no TypeScript loader.
export const SEED_SERVICE = fileURLToPath(new URL('../dist/servers/seed-service.js', import.meta.url))

export interface Replica { child: ChildProcess, exited: Promise<number | null> }

/** N replicas of `script` on free ports, as separate processes, sharing one SQLite file. */
export async function startReplicas (agent: ConsulAgent, script: string, count: number): Promise<{ replicas: Replica[], restart (i: number, signal: NodeJS.Signals): Promise<number | null>, stop (): Promise<void> }> {
  const ports = await freePorts(count)
  const db = join(mkdtempSync(join(tmpdir(), 'reg-bench-')), 'users.db')
  const spawnOne = (i: number): Replica => {
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, PORT: String(ports[i]), SERVICE_ID: `user-service-${i}`, CONSUL_HTTP_ADDR: agent.address, USERS_DB: db, LOG_LEVEL: 'warn' },
      stdio: 'ignore'
    })
    return { child, exited: once(child, 'exit').then(([code]) => code as number | null) }
  }
  const replicas = Array.from({ length: count }, (_, i) => spawnOne(i))
  await untilPassing(agent, count)
  return {
    replicas,
    /** Signals replica i, waits for its exit, starts a new one on the same port and waits until all pass. */
    async restart (i, signal) {
      replicas[i]!.child.kill(signal)
      const code = await replicas[i]!.exited
      replicas[i] = spawnOne(i)
      await untilPassing(agent, count)
      return code
    },
    async stop () {
      // Gracefully where possible (both kinds deregister on SIGTERM), then make sure: a replica killed
      // with -9 stays registered and passing until its check fails, and would count as passing in the
      // next round's untilPassing().
      for (const r of replicas) r.child.kill('SIGTERM')
      const hard = setTimeout(() => { for (const r of replicas) r.child.kill('SIGKILL') }, 15_000)
      await Promise.all(replicas.map((r) => r.exited))
      clearTimeout(hard)
      await deregisterAll(agent, 'user-service')
    }
  }
}

/** Removes every instance of `service` from the agent, so rounds cannot see each other's leftovers. */
export async function deregisterAll (agent: ConsulAgent, service: string): Promise<void> {
  const services = await (await fetch(`${agent.url}/v1/agent/services`)).json() as Record<string, { Service: string }>
  for (const id of Object.keys(services).filter((key) => services[key]!.Service === service)) {
    const res = await fetch(`${agent.url}/v1/agent/service/deregister/${encodeURIComponent(id)}`, { method: 'PUT' })
    await res.arrayBuffer()
  }
}

/** Until `count` instances of `service` are in ?passing (blocking queries, bounded at 60 s). */
export async function untilPassing (agent: ConsulAgent, count: number, service = 'user-service'): Promise<void> {
  await serviceUntil(agent.url, service, (entries) => entries.length >= count, { passing: true })
}

/** A caller that discovers user-service and sends requests through the discovery dispatcher. */
export async function consumer (agent: ConsulAgent, opts: { retries?: number, ejectionMs?: number } = {}): Promise<{ app: FastifyInstance, dispatcher: Dispatcher & { stats: { retries: number } } }> {
  const app = Fastify()
  await app.register(consulPlugin, { service: { name: 'bench-consumer' }, register: false, consul: { address: agent.address } })
  await app.ready()
  const dispatcher = app.consul.dispatcher('user-service', opts)
  await dispatcher.ready
  return { app, dispatcher }
}

export interface LoadCount { ok: number, failed: number }

/** `workers` GET loops until stop(); bounded by `maxMs` whatever happens. */
export function loop (dispatcher: Dispatcher, workers: number, maxMs: number): { count: LoadCount, stop (): Promise<LoadCount> } {
  const count: LoadCount = { ok: 0, failed: 0 }
  const state = { running: true }
  const deadline = Date.now() + maxMs
  const loops = Array.from({ length: workers }, async () => {
    while (state.running && Date.now() < deadline) {
      try {
        const res = await request('http://user-service/users', { dispatcher })
        await res.body.arrayBuffer()
        /* c8 ignore next 2 -- error statuses count as failures too; the scenarios only provoke connection errors */
        if (res.statusCode === 200) count.ok++
        else count.failed++
      } catch {
        count.failed++
      }
    }
  })
  return {
    count,
    async stop () {
      state.running = false
      await Promise.all(loops)
      return count
    }
  }
}
