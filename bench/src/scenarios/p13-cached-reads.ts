import consulPlugin from '@reg/fastify-consul'
import { startConsul, type ConsulAgent } from '@reg/testkit'
import Fastify, { type FastifyInstance } from 'fastify'
import { sized, type Scenario } from '../scenario.js'
import { interleave, summarize } from '../stats.js'

// N processes on one node watching one service: how many queries reach the Consul servers, with and
// without `discovery: { cached: true }`. Each watcher is its own Fastify app with its own plugin (so its
// own watcher and connection), as N processes would be. The count is the servers' own: the cumulative
// `consul_rpc_query` counter (every blocking-capable query a server ran) from /v1/agent/metrics.

const WATCHERS = 20

async function serverQueries (agent: ConsulAgent): Promise<number> {
  const res = await fetch(`${agent.url}/v1/agent/metrics?format=prometheus`)
  const line = (await res.text()).split('\n').find((l) => l.startsWith('consul_rpc_query '))
  /* c8 ignore next -- a server that has run no query yet has no such line (0); never so by the time we count */
  return Number(line?.split(' ')[1] ?? 0)
}

async function register (agent: ConsulAgent, id: string): Promise<void> {
  const res = await fetch(`${agent.url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ Name: 'p13', ID: id, Port: 1000 }) })
  await res.arrayBuffer()
}

/** Server queries while `WATCHERS` apps follow `changes` registrations, each seen by every watcher. */
async function measure (agent: ConsulAgent, cached: boolean, changes: number, round: string): Promise<number> {
  const apps: FastifyInstance[] = []
  try {
    for (let i = 0; i < WATCHERS; i++) {
      const app = Fastify()
      apps.push(app)
      await app.register(consulPlugin, { service: { name: 'p13-watcher' }, register: false, consul: { address: agent.address } })
      await app.ready()
    }
    const watches = apps.map((app) => app.consul.discover('p13', { cached, passingOnly: false }))
    await Promise.all(watches.map((w) => w.ready))
    // Let every watcher park its blocking query before counting.
    await new Promise((resolve) => setTimeout(resolve, 200))
    const before = await serverQueries(agent)
    for (let c = 0; c < changes; c++) {
      const id = `p9-${round}-${c}`
      const seen = watches.map((w) => new Promise<void>((resolve) => {
        const check = (): void => { if (w.instances.some((x) => x.id === id)) { w.off('change', check); resolve() } }
        w.on('change', check)
      }))
      await register(agent, id)
      await Promise.all(seen)
    }
    return (await serverQueries(agent)) - before
  } finally {
    await Promise.all(apps.map((app) => app.close()))
  }
}

export const p13: Scenario = {
  id: 'P13',
  title: `${WATCHERS} watchers on one agent: queries reaching the servers, ?cached vs not`,
  async run (ctx) {
    // The Prometheus format keeps cumulative counters; the default JSON view shows a 10 s interval.
    const agent = await startConsul({ config: 'telemetry {\n  prometheus_retention_time = "10m"\n  disable_hostname = true\n}' })
    const changes = sized(ctx, 2, 10)
    let round = 0
    try {
      const { a, b } = await interleave(ctx.rounds, () => measure(agent, true, changes, `c${round++}`), () => measure(agent, false, changes, `p${round++}`))
      const ours = summarize(a)
      const baseline = summarize(b)
      ctx.log(`P13 server queries for ${changes} changes seen by ${WATCHERS} watchers: cached ${ours.median}, uncached ${baseline.median}`)
      return [{
        id: 'P13',
        what: `server queries, ${WATCHERS} watchers × ${changes} changes on one agent`,
        unit: 'queries',
        ours,
        baseline,
        baselineName: 'the same watchers without ?cached',
        ratio: baseline.median / Math.max(1, ours.median),
        target: `≈ ${WATCHERS}× fewer`,
        met: undefined
      }]
    } finally {
      await agent.stop()
    }
  }
}
