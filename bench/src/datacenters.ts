import { setTimeout as sleep } from 'node:timers/promises'
import type { DispatcherOptions, PriorityLevel, ServiceDispatcher } from '@reg/fastify-consul'
import { DEFAULTS } from '@reg/gateway'
import { serviceUntil, startConsulFederation, type ConsulAgent, type ConsulFederation, type HealthEntry } from '@reg/testkit'
import type { FastifyInstance } from 'fastify'
import { dnsLookup, queryLookup, type PreparedQuery } from './consul-lookups.js'
import { OURS_STEADY } from './fronts.js'
import { openLoop, type OpenLoop, type Sample } from './open-loop.js'
import { consumer, startReplicas, USER_SERVICE } from './replicas.js'

// What the failover scenarios share (#25: P20, P21, R15 across two datacenters, R16 across two zones):
// replicas named after where they run, so an answer's `x-instance-id` says which datacenter or zone
// served it; the moment Consul reports a group gone or back, read as a watcher reads it; and the
// callers under test, each an open loop at a fixed rate (DESIGN.md "Measuring").

/** The sample gateway's discovery as it ships (apps/gateway DEFAULTS.discovery), past its slow start (fronts.ts). */
export const GATEWAY_DISCOVERY: Readonly<DispatcherOptions> = Object.freeze({ ...DEFAULTS.discovery, ...OURS_STEADY })

/** The open loops' URL: our dispatcher resolves the host itself, and the anchors replace the origin. */
const USERS_URL = 'http://user-service/users'

const prefix = (group: string): string => `user-service-${group}-`

export type ReplicaSet = Awaited<ReturnType<typeof startReplicas>>

/** The datacenters of the federation: the callers' own, and the one they fail over to. */
export const LOCAL = 'dc1'
export const REMOTE = 'dc2'

export interface Datacenters {
  fed: ConsulFederation
  local: ConsulAgent
  remote: ConsulAgent
  /** The local agent's DNS port, for the DNS anchor. */
  dnsPort: number
}

/** Two -dev agents WAN-joined on loopback (@reg/testkit), each its datacenter's server, DNS on. */
export async function startDatacenters (): Promise<Datacenters> {
  const fed = await startConsulFederation({ datacenters: [LOCAL, REMOTE], dns: true })
  return { fed, local: fed.agents[LOCAL]!, remote: fed.agents[REMOTE]!, dnsPort: fed.dnsPorts[LOCAL]! }
}

/**
 * `count` user-service replicas on `agent`, registered as `user-service-<group>-<i>`: `group` is the
 * datacenter (P20, P21, R15) or the zone (R16, where `zone` also sets REG_ZONE, registered as meta `zone`).
 */
export async function replicasIn (agent: ConsulAgent, groups: (i: number) => { group: string, zone?: string }, count: number): Promise<ReplicaSet> {
  return await startReplicas(agent, USER_SERVICE, count, (i) => {
    const { group, zone } = groups(i)
    return { SERVICE_ID: `${prefix(group)}${i}`, ...(zone === undefined ? {} : { REG_ZONE: zone }) }
  })
}

/** Whether a replica of `group` answered (its `x-instance-id`). */
export const servedBy = (group: string) => (s: Sample): boolean => String(s.instance).startsWith(prefix(group))

/** How many of Consul's passing entries belong to `group`. */
export const passingIn = (group: string, entries: readonly HealthEntry[]): number => entries.filter((e) => e.Service.ID.startsWith(prefix(group))).length

/**
 * Resolves with `clock()` once Consul reports `done` over the agent's passing user-service instances:
 * blocking queries on `/v1/health/service/user-service?passing`, which return as soon as a check
 * changes, as our watch and any other blocking reader see it. Start it before the change it waits for.
 */
export async function reported (agent: ConsulAgent, done: (passing: readonly HealthEntry[]) => boolean, clock: () => number): Promise<number> {
  await serviceUntil(agent.url, 'user-service', done, { passing: true })
  return clock()
}

/** A caller under test: starts its open loop, and closes whatever it holds. */
export interface Caller {
  load (rate: number): OpenLoop
  close (): Promise<void>
  /** Ours: the dispatcher's retry and ejection counters, for the log (a failed request's why). */
  counters? (): string
}

/** Our dispatcher in the bench process (replicas.ts `consumer`), with `options`; its watch's split is readable. */
export async function ours (agent: ConsulAgent, options: DispatcherOptions): Promise<Caller & { dispatcher: ServiceDispatcher, app: FastifyInstance }> {
  const { app, dispatcher } = await consumer(agent, options)
  const counters = (): string => {
    const s = dispatcher.stats
    return `retries ${s.retries} (denied ${s.retriesDenied}), ejections ${s.ejections}`
  }
  return { app, dispatcher, counters, load: (rate) => openLoop(USERS_URL, { rate, dispatcher }), close: async () => { await app.close() } }
}

/**
 * Our dispatcher as the sample gateway runs it, failing over to the remote datacenter, once its watch
 * routes to the remote datacenter's `count` replicas: every side starts from the same, complete view.
 */
export async function oursWithFailover (dcs: Datacenters, count: number): Promise<Awaited<ReturnType<typeof ours>>> {
  const caller = await ours(dcs.local, { ...GATEWAY_DISCOVERY, failover: { datacenters: [REMOTE] } })
  await untilRoutable(caller.dispatcher, REMOTE, count)
  return caller
}

/** The anchors' name in the table: Consul's own failover, asked before every request. */
export const PREPARED_QUERY_NAME = `a prepared query with Failover.Datacenters [${REMOTE}], executed before every request`

/** Ours against the HTTP anchor alone (P21, R15), and how the table names them. */
export const OURS_AND_ANCHOR = ['ours', 'prepared-query'] as const
export const ANCHOR_NAMES: Readonly<Record<typeof OURS_AND_ANCHOR[number], string>> = { ours: 'ours', 'prepared-query': PREPARED_QUERY_NAME }

/** Replicas per datacenter in P20, P21 and R15. */
export const REPLICAS_PER_DC = 2

/** The prepared query executed before every request (consul-lookups.ts); `seen` hears each answer's datacenter. */
export function preparedQueryCaller (agent: ConsulAgent, query: PreparedQuery, seen?: (datacenter: string) => void): Caller {
  const lookup = queryLookup(agent.url, query, seen)
  return { load: (rate) => openLoop(USERS_URL, { rate, origin: lookup.origin }), close: lookup.close }
}

/** The same prepared query through Consul's DNS before every request (consul-lookups.ts). */
export function dnsCaller (dnsPort: number, query: PreparedQuery): Caller {
  const origin = dnsLookup(dnsPort, query)
  return { load: (rate) => openLoop(USERS_URL, { rate, origin }), close: async () => {} }
}

/** The level of `datacenter` in a watch's split (undefined: the local agent's own). */
export function levelOf (dispatcher: ServiceDispatcher, datacenter: string | undefined): PriorityLevel | undefined {
  return dispatcher.watch.priorities.find((p) => p.datacenter === datacenter)
}

/**
 * Polls `value` every 20 ms until `done` holds, and resolves with it. Bounded, so a federation that
 * never converges or a watch that never notices fails the run instead of hanging it.
 */
export async function pollUntil<T> (value: () => T, done: (v: T) => boolean, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const v = value()
    if (done(v)) return v
    if (performance.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms: ${JSON.stringify(v)}`)
    await sleep(20)
  }
}

/**
 * Until our watch routes to `count` instances of `datacenter`: the remote datacenter's level fills
 * after the local one, so every side starts from the same, complete view.
 */
export async function untilRoutable (dispatcher: ServiceDispatcher, datacenter: string, count: number): Promise<void> {
  await pollUntil(() => dispatcher.watch.priorities, (levels) => levels.some((l) => l.datacenter === datacenter && l.routable === count), `${datacenter}: ${count} routable instances`)
}

/** Kills every replica of a set with SIGKILL, and resolves once they are gone. */
export async function killAll (set: ReplicaSet): Promise<void> {
  for (const r of set.replicas) r.child.kill('SIGKILL')
  await Promise.all(set.replicas.map((r) => r.exited))
}

/** Starts every replica of a killed set again, on its ports and with its ids, and resolves once all pass. */
export async function restartAll (set: ReplicaSet): Promise<void> {
  // Each restart spawns at once (the old process is gone) and then waits until the whole set passes.
  await Promise.all(set.replicas.map(async (_, i) => await set.restart(i, 'SIGKILL')))
}

/**
 * The local level's share of traffic each time the watch's split changes (its first level: the own
 * datacenter with `failover`, the caller's zone with `locality`), from now until `stop()`. The trace
 * `split.ts` `directionChanges` reads: a failover and its return is one change of direction.
 */
export function splitTrace (dispatcher: ServiceDispatcher): { values: number[], stop (): void } {
  const values = [dispatcher.watch.priorities[0]!.load]
  const onChange = (): void => {
    const load = dispatcher.watch.priorities[0]!.load
    if (load !== values[values.length - 1]) values.push(load)
  }
  dispatcher.watch.on('change', onChange)
  return { values, stop: () => { dispatcher.watch.off('change', onChange) } }
}
