import { startConsul } from '@reg/testkit'
import consulPlugin from '@reg/fastify-consul'
import Consul from 'consul'
import Fastify, { type FastifyInstance } from 'fastify'
import { sized, type Scenario } from '../scenario.js'
import { interleave, summarize } from '../stats.js'

/** Milliseconds from `since` until `id` is listed in `?passing`, woken by blocking queries (no polling bias). */
async function untilPassing (url: string, name: string, id: string, since: number): Promise<number> {
  let index = 0
  for (;;) {
    const res = await fetch(`${url}/v1/health/service/${name}?passing${index ? `&index=${index}&wait=60s` : ''}`)
    const entries = await res.json() as Array<{ Service: { ID: string } }>
    if (entries.some((e) => e.Service.ID === id)) return performance.now() - since
    index = Number(res.headers.get('x-consul-index'))
  }
}

async function bareApp (): Promise<FastifyInstance> {
  const app = Fastify()
  app.get('/health', async () => ({ status: 'passing' }))
  return app
}

export const p8: Scenario = {
  id: 'P8',
  title: 'listen → instance appears in ?passing',
  async run (ctx) {
    const agent = await startConsul()
    const interval = sized(ctx, '1s', '10s')
    let n = 0
    try {
      const { a, b } = await interleave(ctx.rounds, async () => {
        const id = `p8-ours-${n++}`
        const app = await bareApp()
        await app.register(consulPlugin, { service: { name: 'p8', id }, check: { type: 'http', interval }, consul: { address: agent.address } })
        await app.listen({ host: '127.0.0.1', port: 0 })
        const ms = await untilPassing(agent.url, 'p8', id, performance.now())
        await app.close()
        return ms
      }, async () => {
        // The guide's way: consul/api-style registration with an HTTP check and no initial Status.
        const id = `p8-seed-${n++}`
        const app = await bareApp()
        await app.listen({ host: '127.0.0.1', port: 0 })
        const since = performance.now()
        const [host, port] = agent.address.split(':') as [string, string]
        const client = new Consul({ host, port: Number(port) })
        const self = app.server.address() as { port: number }
        await client.agent.service.register({ name: 'p8', id, address: '127.0.0.1', port: self.port, check: { name: 'http', http: `http://127.0.0.1:${self.port}/health`, interval, timeout: '5s', deregistercriticalserviceafter: '1m' } })
        const ms = await untilPassing(agent.url, 'p8', id, since)
        await client.agent.service.deregister(id)
        await app.close()
        return ms
      })
      const ours = summarize(a)
      const baseline = summarize(b)
      ctx.log(`P8 ours median ${ours.median.toFixed(1)} ms, seed median ${baseline.median.toFixed(1)} ms (check interval ${interval})`)
      return [{
        id: 'P8',
        what: `listen → in ?passing (HTTP check every ${interval})`,
        unit: 'ms',
        ours,
        baseline,
        baselineName: 'seed: HTTP check, no initial Status',
        ratio: baseline.median / ours.median,
        target: '≤ 50 ms',
        met: ours.median <= 50
      }]
    } finally {
      await agent.stop()
    }
  }
}
