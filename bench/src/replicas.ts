import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import consulPlugin, { type DispatcherOptions, type ServiceDispatcher } from '@reg/fastify-consul'
import { freePorts, serviceUntil, type ConsulAgent } from '@reg/testkit'
import Fastify, { type FastifyInstance } from 'fastify'

export const USER_SERVICE = join(dirname(fileURLToPath(import.meta.resolve('@reg/user-service'))), 'server.js')
// The same app with the seed's exit (deregister, exit at once): the very script whose losses the app's
// rolling-restart test requires of its negative control, so the bench and the proof cannot drift apart.
export const SEED_EXIT = fileURLToPath(import.meta.resolve('@reg/user-service/test/fixtures/seed-exit-server.js'))

/** P17's and P18's replica (servers/tail-server.ts), compiled, whether this module runs from src/ or dist/. */
export const TAIL_SERVER = fileURLToPath(new URL('../dist/servers/tail-server.js', import.meta.url))

/** What each tail-server replica counted: requests received, and those after the caller's deadline. */
export async function triesAt (ports: readonly number[]): Promise<Array<{ received: number, late: number }>> {
  return await Promise.all(ports.map(async (port) => await (await fetch(`http://127.0.0.1:${port}/_tries`)).json() as { received: number, late: number }))
}

export interface Replica { child: ChildProcess, exited: Promise<number | null>, log: string }

/** The last lines a replica wrote, for an error message. */
function tail (file: string): string {
  return readFileSync(file, 'utf8').slice(-2000).trimEnd()
}

/**
 * N replicas of `script` on free ports, as separate processes, sharing one SQLite file; `env` over the
 * process's, the same for each or per replica (R16 puts two zones in one set). Replica i registers as
 * `user-service-<i>` unless its env names a SERVICE_ID (two datacenters' sets must differ: P20 tells
 * who answered by `x-instance-id`).
 */
export async function startReplicas (agent: ConsulAgent, script: string, count: number, env: Record<string, string> | ((i: number) => Record<string, string>) = {}): Promise<{ replicas: Replica[], ports: readonly number[], restart (i: number, signal: NodeJS.Signals): Promise<number | null>, stop (): Promise<void> }> {
  const ports = await freePorts(count)
  const dir = mkdtempSync(join(tmpdir(), 'reg-bench-'))
  const db = join(dir, 'users.db')
  const spawnOne = (i: number): Replica => {
    // Output goes to a file, not a pipe: the bench process measures, and must not read replicas' logs.
    const log = join(dir, `replica-${i}.log`)
    const fd = openSync(log, 'a')
    const child = spawn(process.execPath, [script], {
      // ADMIN_PORT=0: the admin listener on a port the OS picks, not PORT + 1000, which another process may hold.
      env: { ...process.env, ADMIN_PORT: '0', SERVICE_ID: `user-service-${i}`, ...(typeof env === 'function' ? env(i) : env), PORT: String(ports[i]), CONSUL_HTTP_ADDR: agent.address, USERS_DB: db, LOG_LEVEL: 'warn' },
      stdio: ['ignore', fd, fd]
    })
    closeSync(fd)
    return { child, exited: once(child, 'exit').then(([code]) => code as number | null), log }
  }
  const replicas = Array.from({ length: count }, (_, i) => spawnOne(i))
  async function stop (): Promise<void> {
    // Gracefully where possible (both kinds deregister on SIGTERM), then make sure: a replica killed
    // with -9 stays registered and passing until its check fails, and would count as passing in the
    // next round's untilPassing().
    for (const r of replicas) r.child.kill('SIGTERM')
    const hard = setTimeout(() => { for (const r of replicas) r.child.kill('SIGKILL') }, 15_000)
    await Promise.all(replicas.map((r) => r.exited))
    clearTimeout(hard)
    await deregisterAll(agent, 'user-service')
  }
  /**
   * Until every replica passes. A replica that exits first ends the wait at once (a port taken, a crash),
   * and so does the 60 s bound; either way the replicas are stopped (a leak would keep the bench
   * process alive until tap's timeout) and the error says how each one ended and what it last wrote.
   */
  async function allPassing (): Promise<void> {
    const died = new AbortController()
    const current = [...replicas]
    const onExit = current.map((r, i) => {
      const abort = (): void => { died.abort(new Error(`replica ${i} exited before every replica passed`)) }
      r.child.once('exit', abort)
      return abort
    })
    try {
      await serviceUntil(agent.url, 'user-service', (entries) => entries.length >= count, { passing: true, signal: died.signal })
    } catch (err) {
      const states = replicas.map((r, i) => {
        const state = r.child.exitCode === null && r.child.signalCode === null ? 'running' : `exited ${r.child.exitCode ?? r.child.signalCode}`
        const last = tail(r.log)
        return `replica ${i} on port ${ports[i]}: ${state}${last === '' ? '' : `\n${last}`}`
      })
      await stop()
      throw new Error(`${(err as Error).message}\n${states.join('\n')}\n--- consul agent log ---\n${agent.log().slice(-4000)}`)
    } finally {
      // Later exits (a restart's signal, the final stop) are not this wait's business.
      for (const [i, r] of current.entries()) r.child.off('exit', onExit[i]!)
    }
  }
  await allPassing()
  return {
    replicas,
    ports,
    /** Signals replica i, waits for its exit, starts a new one on the same port and waits until all pass. */
    async restart (i, signal) {
      replicas[i]!.child.kill(signal)
      const code = await replicas[i]!.exited
      replicas[i] = spawnOne(i)
      await allPassing()
      return code
    },
    stop
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
export async function consumer (agent: ConsulAgent, opts: DispatcherOptions = {}): Promise<{ app: FastifyInstance, dispatcher: ServiceDispatcher }> {
  const app = Fastify()
  await app.register(consulPlugin, { service: { name: 'bench-consumer' }, register: false, consul: { address: agent.address } })
  await app.ready()
  const dispatcher = app.consul.dispatcher('user-service', opts)
  await dispatcher.ready
  return { app, dispatcher }
}
