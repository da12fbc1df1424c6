import consulPlugin from '@reg/fastify-consul'
import { startConsul } from '@reg/testkit'
import Fastify from 'fastify'
import { request } from 'undici'
import { sized, type Scenario } from '../scenario.js'
import { summarize } from '../stats.js'

export const p4: Scenario = {
  id: 'P4',
  title: 'deregister → change event at the consumer',
  async run (ctx) {
    const agent = await startConsul()
    const app = Fastify()
    try {
      await app.register(consulPlugin, { service: { name: 'p4' }, register: false, consul: { address: agent.address } })
      await app.ready()
      const ours: number[] = []
      const raw: number[] = []
      const samples = sized(ctx, 3, 20)
      for (let i = 0; i < samples; i++) {
        const id = `p4-${i}`
        const reg = await request(`${agent.url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ ID: id, Name: 'p4', Port: 1000 + i, Check: { TTL: '10m', Status: 'passing' } }) })
        await reg.body.arrayBuffer()
        const watch = app.consul.discover('p4')
        await watch.ready
        // The agent syncs a registration to the catalog asynchronously: until it has, a deregistration
        // would change nothing anyone can see, and both sides would wait forever.
        /* c8 ignore next -- whether the sync already happened by now is timing */
        while (!watch.instances.some((x) => x.id === id)) await new Promise((resolve) => watch.on('change', resolve))
        // The baseline: a bare undici blocking query on the same view, armed before the change.
        const first = await request(`${agent.url}/v1/health/service/p4?passing`)
        await first.body.arrayBuffer()
        const index = first.headers['x-consul-index'] as string
        const rawWake = request(`${agent.url}/v1/health/service/p4?passing&index=${index}&wait=30s`).then(async (res) => { await res.body.arrayBuffer(); return performance.now() })
        const oursWake = new Promise<number>((resolve) => watch.on('change', () => resolve(performance.now())))
        // Both blocking queries must be parked at the agent before the change, or we time the arming.
        await new Promise((resolve) => setTimeout(resolve, 50))
        const t0 = performance.now()
        const dereg = await request(`${agent.url}/v1/agent/service/deregister/${id}`, { method: 'PUT' })
        await dereg.body.arrayBuffer()
        const [o, r] = await Promise.all([oursWake, rawWake])
        ours.push(o - t0)
        raw.push(r - t0)
        watch.close()
      }
      const o = summarize(ours)
      const r = summarize(raw)
      ctx.log(`P4 median: change event ${o.median.toFixed(2)} ms, raw blocking query ${r.median.toFixed(2)} ms (${samples} samples)`)
      return [{ id: 'P4', what: `deregister → change event (${samples} samples)`, unit: 'ms', ours: o, baseline: r, baselineName: 'raw undici blocking query, same change', ratio: r.median / o.median, target: '≤ 10 ms', met: o.median <= 10 }]
    } finally {
      await app.close()
      await agent.stop()
    }
  }
}
