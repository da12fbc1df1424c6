import { loadavg } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { startLoad, type Load } from '@reg/user-service/test/fixtures/request-loop.js'
import { serviceUntil, startConsul, type ConsulAgent } from '@reg/testkit'
import { Agent } from 'undici'
import { startChildServer } from '../child-server.js'
import { describeRuns, failureFigure } from '../failures.js'
import { startReplicas, USER_SERVICE } from '../replicas.js'
import { sized, type Scenario } from '../scenario.js'

// Every replica alive and answering, but critical in Consul: an operator's TTL check (a shared
// dependency check, a bad deploy of the check) failed on all of them at once. Our gateway panics and
// routes to all of them; the old behaviour (passing instances only, no panic) has nothing to route to.

/**
 * The old discovery: Consul's `?passing` answer, and nothing to fall back on. `passingOnly` with
 * `panicThreshold: 0` is not enough today, since nothing routable always panics (the watcher now reads
 * every instance and decides itself); so Consul filters out every instance with a failing check, as
 * `?passing` did, and the watcher never sees a candidate to panic to.
 */
export const PASSING_ONLY = { passingOnly: true, panicThreshold: 0, filter: 'not (Checks.Status == "critical" or Checks.Status == "warning")' }

/** Registers a critical TTL check on each replica, as an operator would, and waits until none passes. */
async function failEveryCheck (agent: ConsulAgent, ids: string[]): Promise<void> {
  for (const id of ids) {
    const res = await fetch(`${agent.url}/v1/agent/check/register`, {
      method: 'PUT',
      body: JSON.stringify({ ID: `operator-${id}`, Name: 'operator', ServiceID: id, TTL: '10m', Status: 'critical' })
    })
    await res.arrayBuffer()
  }
  await serviceUntil(agent.url, 'user-service', (entries) => entries.length === 0, { passing: true })
}

/** Both gateways, on the same 3 replicas made critical; the requests each served in `seconds`. */
async function allCritical (agent: ConsulAgent, seconds: number): Promise<{ ours: Load, old: Load }> {
  const set = await startReplicas(agent, USER_SERVICE, 3)
  const env = { CONSUL_HTTP_ADDR: agent.address }
  const ours = await startChildServer('gateway-server.js', { ...env, DISCOVERY: '{}' })
  const old = await startChildServer('gateway-server.js', { ...env, DISCOVERY: JSON.stringify(PASSING_ONLY) })
  const client = new Agent()
  const measure = async (url: string): Promise<Load & { loadavg: number[] }> => {
    const load = startLoad(`${url}/users`, client, 4, 60_000)
    await sleep(seconds * 1000)
    await load.stop()
    return Object.assign(load, { loadavg: loadavg() })
  }
  try {
    await failEveryCheck(agent, ['user-service-0', 'user-service-1', 'user-service-2'])
    // The gateways' blocking queries return within milliseconds of the change; a second is margin.
    await sleep(1000)
    return { ours: await measure(ours.url), old: await measure(old.url) }
  } finally {
    await client.close()
    await Promise.all([ours.stop(), old.stop()])
    await set.stop()
  }
}

export const p12: Scenario = {
  id: 'P12',
  title: 'requests served while every replica is critical in Consul but alive',
  async run (ctx) {
    const agent = await startConsul()
    const seconds = sized(ctx, 1, 5)
    try {
      const runs: Array<{ ours: Load, old: Load }> = []
      for (let i = 0; i < ctx.rounds; i++) runs.push(await allCritical(agent, seconds))
      const ours = runs.map((r) => r.ours)
      const old = runs.map((r) => r.old)
      ctx.log(`P12 failed/sent with every replica critical, ours: ${describeRuns(ours)}; passing only, no panic: ${describeRuns(old)}`)
      return [failureFigure({
        id: 'P12',
        what: `failed GETs through the gateway in ${seconds} s with all 3 replicas critical in Consul but alive`,
        baselineName: 'the old discovery: Consul\'s ?passing instances only, no panic',
        target: 'ours 0 (100 % served)',
        ours,
        baseline: old
      })]
    } finally {
      await agent.stop()
    }
  }
}
