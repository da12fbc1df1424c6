import { once } from 'node:events'
import { loadavg } from 'node:os'
import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { startLoad, type Load } from '@reg/user-service/test/fixtures/request-loop.js'
import { startConsul, type ConsulAgent } from '@reg/testkit'
import { Agent } from 'undici'
import { startChildServer } from '../child-server.js'
import { describeRuns, failureFigure, type RunCount } from '../failures.js'
import { startReplicas, USER_SERVICE } from '../replicas.js'
import { sized, type Scenario } from '../scenario.js'
import { summarize } from '../stats.js'

// Consul (the dev agent: the whole control plane) stopped under load through the gateway, then back.
// Two figures from each run: the requests that failed during the outage, and how long after Consul's
// return a replica registered only then gets its first request through the gateway.

/** The old watch (before #13): the last known set for 60 s, then nothing; backoff grows to 30 s. */
export const OLD_WATCH = { staleTtl: '60s', backoff: { base: 200, cap: 30_000 } }

/** Give up on the newcomer after this: the old backoff's cap (30 s) plus a margin. */
const NEWCOMER_DEADLINE = 60_000

interface OutageRun { outage: RunCount, returnMs: number, loadavg: number[] }

const counts = (l: Load): RunCount => ({ ok: l.ok, non2xx: l.non2xx, errors: l.errors })

// Both gateways run through the same outage, each under its own load; the newcomer tells their requests
// apart by a query value the replicas accept (`limit`), so each side's first request is timed on its own.
const SIDES = { ours: '99', old: '98' } as const
type Side = keyof typeof SIDES

/** A replica that is not registered yet: answers /users and notes when each side's first request arrives. */
async function newcomer (): Promise<{ port: number, firstRequest: Record<Side, Promise<number>>, close (): Promise<void> }> {
  const seen = {} as Record<Side, (at: number) => void>
  const firstRequest = {} as Record<Side, Promise<number>>
  for (const side of Object.keys(SIDES) as Side[]) firstRequest[side] = new Promise<number>((resolve) => { seen[side] = resolve })
  const server = createServer((req, res) => {
    const limit = new URL(req.url!, 'http://x').searchParams.get('limit')
    for (const side of Object.keys(SIDES) as Side[]) if (limit === SIDES[side]) seen[side](performance.now())
    res.setHeader('content-type', 'application/json')
    res.end('[]')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as { port: number }).port,
    firstRequest,
    async close () {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    }
  }
}

async function outageRun (agent: ConsulAgent, seconds: number): Promise<Record<Side, OutageRun>> {
  const set = await startReplicas(agent, USER_SERVICE, 3)
  const env = { CONSUL_HTTP_ADDR: agent.address }
  const gateways = { ours: await startChildServer('gateway-server.js', { ...env, DISCOVERY: '{}' }), old: await startChildServer('gateway-server.js', { ...env, DISCOVERY: JSON.stringify(OLD_WATCH) }) }
  const client = new Agent()
  const fresh = await newcomer()
  const maxMs = (seconds * 1000) + NEWCOMER_DEADLINE + 30_000
  const loads = { ours: startLoad(`${gateways.ours.url}/users?limit=${SIDES.ours}`, client, 4, maxMs), old: startLoad(`${gateways.old.url}/users?limit=${SIDES.old}`, client, 4, maxMs) }
  try {
    await Promise.all([loads.ours.reach(100), loads.old.reach(100)])
    await agent.kill()
    const before = { ours: counts(loads.ours), old: counts(loads.old) }
    await sleep(seconds * 1000)
    const during = { ours: counts(loads.ours), old: counts(loads.old) }
    const load = loadavg()
    // Back on the same port with empty state (a -dev agent keeps nothing), as after a lost control plane.
    await agent.start()
    const back = performance.now()
    const res = await fetch(`${agent.url}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({ ID: 'user-service-new', Name: 'user-service', Address: '127.0.0.1', Port: fresh.port, Check: { TTL: '10m', Status: 'passing' } })
    })
    await res.arrayBuffer()
    const first = async (side: Side): Promise<number> => Promise.race([fresh.firstRequest[side], sleep(NEWCOMER_DEADLINE, back + NEWCOMER_DEADLINE)])
    const [ours, old] = await Promise.all([first('ours'), first('old')])
    const outage = (side: Side): RunCount => ({ ok: during[side].ok - before[side].ok, non2xx: during[side].non2xx - before[side].non2xx, errors: during[side].errors - before[side].errors })
    return {
      ours: { outage: outage('ours'), returnMs: ours - back, loadavg: load },
      old: { outage: outage('old'), returnMs: old - back, loadavg: load }
    }
  } finally {
    await Promise.all([loads.ours.stop(), loads.old.stop()])
    await client.close()
    await Promise.all([gateways.ours.stop(), gateways.old.stop()])
    await set.stop()
    await fresh.close()
  }
}

export const p11: Scenario = {
  id: 'P11',
  title: 'Consul stopped under load through the gateway: failed requests, and Consul\'s return → a new replica gets traffic',
  async run (ctx) {
    // Longer than the old watch's staleTtl (60 s), or the outage would not reach what the old side lacks.
    const seconds = sized(ctx, 2, 65)
    const agent = await startConsul()
    try {
      const runs: Array<Record<Side, OutageRun>> = []
      for (let i = 0; i < ctx.rounds; i++) runs.push(await outageRun(agent, seconds))
      const ours = runs.map((r) => r.ours)
      const old = runs.map((r) => r.old)
      ctx.log(`P11 failed/sent during a ${seconds} s outage, ours: ${describeRuns(ours.map((r) => r.outage))}; old defaults: ${describeRuns(old.map((r) => r.outage))}; return → newcomer's first request: ours ${ours.map((r) => r.returnMs.toFixed(0)).join('/')} ms, old ${old.map((r) => r.returnMs.toFixed(0)).join('/')} ms`)
      const o = summarize(ours.map((r) => r.returnMs))
      const b = summarize(old.map((r) => r.returnMs))
      const windows = (pick: (r: OutageRun) => number) => [
        ...ours.map((r, round) => ({ side: 'ours', round, value: pick(r), loadavg: r.loadavg })),
        ...old.map((r, round) => ({ side: 'baseline', round, value: pick(r), loadavg: r.loadavg }))
      ]
      const baselineName = 'the old watch: staleTtl 60 s, backoff cap 30 s, in the same outage'
      return [
        {
          ...failureFigure({
            id: 'P11',
            what: `failed GETs through the gateway during a ${seconds} s Consul outage`,
            baselineName,
            target: 'ours 0',
            ours: ours.map((r) => r.outage),
            baseline: old.map((r) => r.outage)
          }),
          windows: windows((r) => r.outage.non2xx + r.outage.errors)
        },
        {
          id: 'P11',
          what: `Consul back after ${seconds} s → a newly registered replica gets its first request`,
          unit: 'ms',
          ours: o,
          baseline: b,
          baselineName,
          ratio: b.median / o.median,
          target: '≤ 1000 ms every round',
          met: o.max <= 1000,
          windows: windows((r) => r.returnMs)
        }
      ]
    } finally {
      await agent.stop()
    }
  }
}
