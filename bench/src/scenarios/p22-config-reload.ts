import consulPlugin from '@reg/fastify-consul'
import { startConsul } from '@reg/testkit'
import { Type } from '@sinclair/typebox'
import Fastify from 'fastify'
import { request } from 'undici'
import { sized, type Scenario } from '../scenario.js'
import { summarize, verdict } from '../stats.js'

const kvPut = async (url: string, key: string, value: string): Promise<void> => {
  const res = await request(`${url}/v1/kv/${key}`, { method: 'PUT', body: value })
  await res.body.arrayBuffer()
}

/** A bare undici blocking query on the prefix, armed at `index`: resolves when Consul wakes it. */
const rawWake = (url: string, index: string): Promise<number> =>
  request(`${url}/v1/kv/config/?recurse&index=${index}&wait=30s`).then(async (res) => { await res.body.arrayBuffer(); return performance.now() })

export const p22: Scenario = {
  id: 'P22',
  title: 'kv put → the new value in fastify.config ÷ a raw blocking query on the same prefix',
  async run (ctx) {
    const agent = await startConsul()
    await kvPut(agent.url, 'config/p22/n', '0')
    const app = Fastify()
    try {
      await app.register(consulPlugin, {
        service: { name: 'p22' },
        register: false,
        consul: { address: agent.address },
        config: { schema: Type.Object({ n: Type.Integer() }) }
      })
      await app.ready()
      const live = app.consul.config!
      const ours: number[] = []
      const raw: number[] = []
      const ratios: number[] = []
      const aa: number[] = []
      const trials = sized(ctx, 3, 25)
      for (let n = 1; n <= trials; n++) {
        const first = await request(`${agent.url}/v1/kv/config/?recurse`)
        await first.body.arrayBuffer()
        const index = first.headers['x-consul-index'] as string
        // Every side waits on the same write, so the order of measurement cannot favour one; the null
        // control is a second raw query on the same write: how far two identical waiters drift apart.
        const rawA = rawWake(agent.url, index)
        const rawB = rawWake(agent.url, index)
        const seen = new Promise<number>((resolve) => {
          const listener = (): void => { live.off('change', listener); resolve(performance.now()) }
          live.on('change', listener)
        })
        // The blocking queries must be parked at the agent before the write, or we time the arming.
        await new Promise((resolve) => setTimeout(resolve, 50))
        const t0 = performance.now()
        await kvPut(agent.url, 'config/p22/n', String(n))
        const [o, a, b] = (await Promise.all([seen, rawA, rawB])).map((x) => x - t0) as [number, number, number]
        ours.push(o)
        raw.push(a)
        ratios.push(a / o)
        aa.push(a / b)
      }
      const o = summarize(ours)
      const r = summarize(raw)
      // Lower is better: raw ÷ ours ≥ 1 / 1.2 is the "at most 1.2× Consul's own wake-up".
      const v = verdict(ratios, 1 / 1.2, aa)
      ctx.log(`P22 median: fastify.config changed ${o.median.toFixed(2)} ms, raw blocking query ${r.median.toFixed(2)} ms; A/A ${summarize(aa).median.toFixed(3)} → ${v.text} (${trials} writes)`)
      return [{
        id: 'P22',
        what: `kv put → new value in fastify.config (${trials} writes)`,
        unit: 'ms',
        ours: o,
        baseline: r,
        baselineName: 'raw undici blocking query on the prefix, same write',
        ratio: r.median / o.median,
        target: '≤ 1.2× the raw wake-up',
        met: v.met,
        verdict: v.text,
        aa: summarize(aa)
      }]
    } finally {
      await app.close()
      await agent.stop()
    }
  }
}
