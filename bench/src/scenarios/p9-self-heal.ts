import { setTimeout as sleep } from 'node:timers/promises'
import { startConsul, serviceUntil } from '@reg/testkit'
import { startChildServer, type ChildServer } from '../child-server.js'
import { sized, type Figure, type Scenario } from '../scenario.js'
import { summarize } from '../stats.js'

/** How often the agent is polled while it comes back; both sides share this bias. */
const POLL_MS = 5

/**
 * Milliseconds from `since` until GET `url` answers JSON for which `done` holds. Polled, not a blocking
 * query: the agent is down when this starts, and an index from before the restart means nothing after it.
 */
async function until (url: string, done: (body: unknown) => boolean, since: number): Promise<number> {
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) })
      if (done(await res.json())) return performance.now() - since
    } catch {
      // Refused while the agent is down: keep asking.
    }
    await sleep(POLL_MS)
  }
}

const listed = (id: string) => (entries: unknown): boolean => (entries as Array<{ Service: { ID: string } }>).some((e) => e.Service.ID === id)
const serfPassing = (checks: unknown): boolean => (checks as Array<{ CheckID: string, Status: string }>).some((c) => c.CheckID === 'serfHealth' && c.Status === 'passing')

const MODES = ['http', 'ttl'] as const

export const p9: Scenario = {
  id: 'P9',
  title: 'agent restart (all state lost) → instance registered and in ?passing again',
  async run (ctx) {
    const agent = await startConsul()
    const servers: ChildServer[] = []
    try {
      // One service per check mode, both on the same agent: every wipe times both modes and the baseline.
      for (const mode of MODES) servers.push(await startChildServer('heal-server.js', { CONSUL_HTTP_ADDR: agent.address, CHECK: mode, SERVICE_ID: `p9-${mode}` }))
      await serviceUntil(agent.url, 'p9', (entries) => entries.length === MODES.length, { passing: true })
      const wakes: number[] = []
      const heals: Record<typeof MODES[number], number[]> = { http: [], ttl: [] }
      const wipes = sized(ctx, 2, Math.max(10, ctx.rounds))
      for (let i = 0; i < wipes; i++) {
        // testkit's restart() in two halves: kill() returns once the agent has exited (its state is gone),
        // which is where the clock starts; start() brings it back on the same ports.
        await agent.kill()
        const since = performance.now()
        // The baseline is Consul's own wake-up: a leader has put the node in the catalog with its serfHealth
        // passing, which ?passing requires of every service on the node, so no service can be listed sooner.
        const [wake, http, ttl] = await Promise.all([
          until(`${agent.url}/v1/health/node/${agent.nodeName}`, serfPassing, since),
          until(`${agent.url}/v1/health/service/p9?passing`, listed('p9-http'), since),
          until(`${agent.url}/v1/health/service/p9?passing`, listed('p9-ttl'), since),
          agent.start()
        ])
        wakes.push(wake)
        heals.http.push(http)
        heals.ttl.push(ttl)
        ctx.log(`P9 wipe ${i + 1}/${wipes}: the node's serfHealth passing after ${wake.toFixed(0)} ms, HTTP-check instance ${http.toFixed(0)} ms, TTL instance ${ttl.toFixed(0)} ms`)
        // Let each instance's self-heal watch settle into its steady state before the next wipe.
        await sleep(sized(ctx, 200, 1000))
      }
      const baseline = summarize(wakes)
      return MODES.map((mode): Figure => {
        const ours = summarize(heals[mode])
        return {
          id: 'P9',
          what: `agent restart → in ?passing again, ${mode === 'http' ? 'HTTP' : 'TTL'} check (${wipes} wipes)`,
          unit: 'ms',
          ours,
          baseline,
          baselineName: 'Consul\'s own wake-up: the node\'s serfHealth passing again',
          ratio: baseline.median / ours.median,
          target: 'median ≤ 1,000 ms',
          met: ours.median <= 1000
        }
      })
    } finally {
      await Promise.all(servers.map((s) => s.stop()))
      await agent.stop()
    }
  }
}
