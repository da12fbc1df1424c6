import { once } from 'node:events'
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

interface OutageRun { outage: RunCount, returnMs: number }

const counts = (l: Load): RunCount => ({ ok: l.ok, non2xx: l.non2xx, errors: l.errors })

/** A replica that is not registered yet: answers /users and notes when its first request arrives. */
async function newcomer (): Promise<{ port: number, firstRequest: Promise<number>, close (): Promise<void> }> {
  let seen!: (at: number) => void
  const firstRequest = new Promise<number>((resolve) => { seen = resolve })
  const server = createServer((req, res) => {
    seen(performance.now())
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

async function outageRun (agent: ConsulAgent, discovery: object, seconds: number): Promise<OutageRun> {
  const set = await startReplicas(agent, USER_SERVICE, 3)
  const gateway = await startChildServer('gateway-server.js', { CONSUL_HTTP_ADDR: agent.address, DISCOVERY: JSON.stringify(discovery) })
  const client = new Agent()
  const fresh = await newcomer()
  const load = startLoad(`${gateway.url}/users`, client, 4, (seconds * 1000) + NEWCOMER_DEADLINE + 30_000)
  try {
    await load.reach(100)
    await agent.kill()
    const before = counts(load)
    await sleep(seconds * 1000)
    const during = counts(load)
    // Back on the same port with empty state (a -dev agent keeps nothing), as after a lost control plane.
    await agent.start()
    const back = performance.now()
    const res = await fetch(`${agent.url}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({ ID: 'user-service-new', Name: 'user-service', Address: '127.0.0.1', Port: fresh.port, Check: { TTL: '10m', Status: 'passing' } })
    })
    await res.arrayBuffer()
    const first = await Promise.race([fresh.firstRequest, sleep(NEWCOMER_DEADLINE, back + NEWCOMER_DEADLINE)])
    return {
      outage: { ok: during.ok - before.ok, non2xx: during.non2xx - before.non2xx, errors: during.errors - before.errors },
      returnMs: first - back
    }
  } finally {
    await load.stop()
    await client.close()
    await gateway.stop()
    await set.stop()
    await fresh.close()
  }
}

export const p11: Scenario = {
  id: 'P11',
  title: 'Consul stopped under load through the gateway: failed requests, and Consul\'s return → a new replica gets traffic',
  async run (ctx) {
    const seconds = sized(ctx, 2, 90)
    const agent = await startConsul()
    try {
      // One round of each, whatever BENCH_ROUNDS says: a round is a 90 s outage per side plus the
      // recovery (up to 30 s for the old backoff), and three would add 8 minutes to every bench.
      const ours = await outageRun(agent, {}, seconds)
      const old = await outageRun(agent, OLD_WATCH, seconds)
      ctx.log(`P11 failed/sent during a ${seconds} s outage, ours: ${describeRuns([ours.outage])}; old defaults: ${describeRuns([old.outage])}; return → newcomer's first request: ours ${ours.returnMs.toFixed(0)} ms, old ${old.returnMs.toFixed(0)} ms`)
      const o = summarize([ours.returnMs])
      const b = summarize([old.returnMs])
      return [
        failureFigure({
          id: 'P11',
          what: `failed GETs through the gateway during a ${seconds} s Consul outage`,
          baselineName: 'the old watch: staleTtl 60 s, backoff cap 30 s',
          target: 'ours 0',
          ours: [ours.outage],
          baseline: [old.outage]
        }),
        {
          id: 'P11',
          what: `Consul back after ${seconds} s → a newly registered replica gets its first request`,
          unit: 'ms',
          ours: o,
          baseline: b,
          baselineName: 'the old watch: staleTtl 60 s, backoff cap 30 s',
          ratio: b.median / o.median,
          target: '≤ 1000 ms',
          met: o.median <= 1000
        }
      ]
    } finally {
      await agent.stop()
    }
  }
}
