import type { ChildProcess } from 'node:child_process'
import { ensureHaproxy, freePorts, startConsul, type ConsulAgent } from '@reg/testkit'
import { startChildServer } from './child-server.js'
import { startHaproxy } from './haproxy.js'
import { startReplicas, USER_SERVICE } from './replicas.js'
import type { ScenarioContext } from './scenario.js'
import { rotatedRounds } from './stats.js'

// The fronts that stand before three user-service replicas in the frozen-replica scenarios (P10, P23,
// R20): our gateway, with any discovery options over its defaults, and HAProxy configured as a fair peer.

export interface Front { url: string, config?: string, stop (): Promise<void> }

/** Our gateway's per-try timeout (apps/gateway DEFAULTS.discovery), which HAProxy's `timeout server` matches. */
export const PER_TRY_TIMEOUT = '2s'

/**
 * Our gateway as it runs once its replicas are past the first 30 s: slow start over. Every run starts
 * fresh replicas and a fresh gateway, so with its default slow start every figure would be taken inside
 * the window, where balancing weighs only what is in flight; a fleet spends nearly all its life after it.
 */
export const OURS_STEADY = Object.freeze({ slowStartMs: 0 })

export const HAPROXY_NAME = 'HAProxy 2.6 as a fair peer: leastconn, timeout server 2s, retries 3, redispatch, observe layer7, fastinter 250ms, over Consul DNS SRV (config in readme.json)'

export interface Fronts {
  /** One agent for every run, with its DNS interface on for HAProxy's SRV lookups. */
  agent: ConsulAgent
  /** Our gateway, in its own process, with `discovery` over its defaults. */
  gateway (discovery: object): () => Promise<Front>
  /** HAProxy (installed with apt-get when missing) over Consul DNS SRV for user-service, 3 slots. */
  haproxy (): Promise<Front>
}

export async function startFronts (ctx: ScenarioContext): Promise<Fronts> {
  const haproxyBin = await ensureHaproxy({ log: ctx.log })
  // The testkit turns DNS off (-dns-port -1), and Consul takes the last of a repeated flag.
  const [dnsPort] = await freePorts(1) as [number]
  const agent = await startConsul({ args: ['-dns-port', String(dnsPort)] })
  const env = { CONSUL_HTTP_ADDR: agent.address }
  return {
    agent,
    gateway: (discovery) => async () => startChildServer('gateway-server.js', { ...env, DISCOVERY: JSON.stringify(discovery) }),
    haproxy: async () => startHaproxy(haproxyBin, dnsPort, 'user-service', 3, PER_TRY_TIMEOUT)
  }
}

/** Distinct `x-instance-id`s in up to 5 bursts of 30 concurrent GETs: every replica really served by the front. */
export async function servedReplicas (url: string): Promise<number> {
  const seen = new Set<string>()
  for (let burst = 0; burst < 5 && seen.size < 3; burst++) {
    await Promise.all(Array.from({ length: 30 }, async () => {
      const res = await fetch(url)
      await res.arrayBuffer()
      seen.add(String(res.headers.get('x-instance-id')))
    }))
  }
  return seen.size
}

/**
 * One run on fresh state: three user-service replicas, the front, and `body` given the front's
 * `/users` URL, the front and replica 1 (the one a scenario freezes). Replica 1 is thawed and everything
 * stopped afterwards, whatever happened.
 */
export async function onFreshReplicas<T> (agent: ConsulAgent, front: () => Promise<Front>, body: (url: string, f: Front, target: ChildProcess, ports: readonly number[]) => Promise<T>, replicas: { script: string, env?: Record<string, string> } = { script: USER_SERVICE }): Promise<T> {
  const set = await startReplicas(agent, replicas.script, 3, replicas.env)
  const f = await front()
  const target = set.replicas[1]!.child
  try {
    return await body(`${f.url}/users`, f, target, set.ports)
  } finally {
    target.kill('SIGCONT')
    await f.stop()
    await set.stop()
  }
}

/**
 * `ctx.rounds` rounds of one run per side, the sides' order rotated each round so that none always runs
 * first, on one agent (with its fronts) stopped at the end. `report` logs a run as it ends.
 */
export async function sideRounds<S extends string, R> (ctx: ScenarioContext, sides: readonly S[], fronts: (f: Fronts) => Record<S, () => Promise<Front>>, run: (agent: ConsulAgent, front: () => Promise<Front>) => Promise<R>, report: (round: number, side: S, r: R) => void): Promise<Record<S, R[]>> {
  const all = await startFronts(ctx)
  const byside = fronts(all)
  try {
    return await rotatedRounds(ctx.rounds, sides, async (side) => await run(all.agent, byside[side]), report)
  } finally {
    await all.agent.stop()
  }
}
