import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { attachToTest, launchAgent, leaderReady, type ConsulAgent, type TestLike } from './consul-agent.js'
import { ensureConsul } from './ensure-consul.js'
import { freePorts } from './free-ports.js'

export interface StartClusterOptions {
  /** Server agents (raft voters). Default 3. */
  servers?: number
  /** Client agents; apps talk to these, as in production. Default 1. */
  clients?: number
  t?: TestLike
  /** Milliseconds to wait for a leader and every member. Default 60 s. */
  readyTimeout?: number
}

export interface ConsulCluster {
  servers: ConsulAgent[]
  clients: ConsulAgent[]
  /** The server that currently leads, as the cluster itself reports it. */
  leader (): Promise<ConsulAgent>
  /** Resolves once every running member sees a leader and its own node is in the catalog. */
  ready (timeoutMs?: number): Promise<void>
  stop (): Promise<void>
}

/**
 * A real multi-agent cluster on loopback: N servers with -bootstrap-expect N and -retry-join, plus
 * client agents. Unlike -dev agents they keep their data dir, so restart() is a process restart that
 * remembers the cluster, and killing the leader forces a real election.
 */
export async function startConsulCluster (opts: StartClusterOptions = {}): Promise<ConsulCluster> {
  const bin = await ensureConsul()
  const servers = opts.servers ?? 3
  const clients = opts.clients ?? 1
  const members = await Promise.all(Array.from({ length: servers + clients }, async (_, i) => {
    const [http, serfLan, serfWan, server] = await freePorts(4) as [number, number, number, number]
    return { i, http, serfLan, serfWan, server, dir: await mkdtemp(join(tmpdir(), 'reg-cluster-')), isServer: i < servers }
  }))
  const join_ = members.filter((m) => m.isServer).flatMap((m) => ['-retry-join', `127.0.0.1:${m.serfLan}`])
  // raft_multiplier 1 is what -dev uses; the production default (5) makes loopback elections slow.
  const hcl = 'performance {\n  raft_multiplier = 1\n}\n'

  const agents = await Promise.all(members.map((m) => launchAgent({
    bin,
    dir: m.dir,
    nodeName: `${m.isServer ? 'server' : 'client'}-${m.i}-${m.http}`,
    httpPort: m.http,
    token: undefined,
    hcl,
    lazy: true,
    args: [
      'agent', ...(m.isServer ? ['-server', '-bootstrap-expect', String(servers)] : []),
      '-node', `${m.isServer ? 'server' : 'client'}-${m.i}-${m.http}`, '-data-dir', join(m.dir, 'data'),
      '-bind', '127.0.0.1', '-client', '127.0.0.1',
      '-http-port', String(m.http), '-serf-lan-port', String(m.serfLan), '-serf-wan-port', String(m.serfWan),
      '-server-port', String(m.server), '-dns-port', '-1', '-grpc-port', '-1',
      '-log-level', 'warn', '-config-file', join(m.dir, 'agent.hcl'),
      ...join_
    ]
  })))

  const cluster: ConsulCluster = {
    servers: agents.slice(0, servers),
    clients: agents.slice(servers),
    async ready (timeoutMs = opts.readyTimeout ?? 60_000) {
      const deadline = Date.now() + timeoutMs
      await Promise.all(agents.filter((a) => a.running()).map((a) => leaderReady(a.url, undefined, a.nodeName, deadline, new AbortController().signal)))
    },
    async leader () {
      for (const a of agents.filter((x) => x.running())) {
        try {
          const addr = await (await fetch(`${a.url}/v1/status/leader`)).json() as string
          const i = members.findIndex((m) => m.isServer && addr === `127.0.0.1:${m.server}`)
          if (i >= 0) return agents[i]!
        } catch {
          // Without a leader an agent answers 500 with plain text; ask the next member.
        }
      }
      throw new Error('no leader')
    },
    async stop () {
      await Promise.all(agents.map((a) => a.stop()))
    }
  }
  try {
    await cluster.ready()
  } catch (err) {
    const logs = agents.map((a) => `--- ${a.nodeName} ---\n${a.log()}`).join('\n')
    await cluster.stop()
    throw new Error(`${(err as Error).message}\n${logs}`)
  }
  if (opts.t) for (const a of agents) attachToTest(opts.t, a)
  return cluster
}
