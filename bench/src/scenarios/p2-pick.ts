import consulPlugin from '@reg/fastify-consul'
import { startConsul } from '@reg/testkit'
import Consul from 'consul'
import Fastify from 'fastify'
import { registerMany } from '../register-many.js'
import { sized, type Figure, type Scenario } from '../scenario.js'
import { interleave, summarize } from '../stats.js'

/** Calls `fn` in batches until `ms` elapse; returns calls per second. */
async function rate (ms: number, batch: number, fn: () => unknown): Promise<number> {
  const start = performance.now()
  let calls = 0
  while (performance.now() - start < ms) {
    for (let i = 0; i < batch; i++) fn()
    calls += batch
    // Yield now and then so a long measurement never starves the event loop.
    if (calls % (batch * 100) === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  return calls / ((performance.now() - start) / 1000)
}

export const p2: Scenario = {
  id: 'P2',
  title: 'pick() picks/s vs the seed\'s per-pick health.service query',
  async run (ctx) {
    const agent = await startConsul()
    const app = Fastify()
    const figures: Figure[] = []
    try {
      await app.register(consulPlugin, { service: { name: 'p2' }, register: false, consul: { address: agent.address } })
      await app.ready()
      const [host, port] = agent.address.split(':') as [string, string]
      const client = new Consul({ host, port: Number(port) })
      for (const size of [3, 1000]) {
        const name = `p2-${size}`
        await registerMany(agent, name, size)
        const watch = app.consul.discover(name)
        await watch.ready
        // The agent syncs registrations to the catalog asynchronously; measure the full set.
        /* c8 ignore next -- whether the sync already finished by now is timing */
        while (watch.instances.length < size) await new Promise((resolve) => watch.on('change', resolve))
        let sink = 0
        const { a, b } = await interleave(ctx.rounds,
          () => rate(sized(ctx, 200, 1000), 10_000, () => { sink += watch.pick().port }),
          async () => {
            // The guide's way: ask Consul for the passing instances on every call, then pick one.
            const start = performance.now()
            let calls = 0
            while (performance.now() - start < sized(ctx, 200, 1000)) {
              const entries = await client.health.service({ service: name, passing: true }) as Array<{ Service: { Port: number } }>
              sink += entries[calls++ % entries.length]!.Service.Port
            }
            return calls / ((performance.now() - start) / 1000)
          })
        watch.close()
        const ours = summarize(a)
        const baseline = summarize(b)
        // The checksum is printed so the picks cannot be optimised away.
        ctx.log(`P2 ${size} instances: pick() ${(ours.median / 1e6).toFixed(1)} M/s, per-pick query ${baseline.median.toFixed(0)}/s (checksum ${sink % 997})`)
        figures.push({ id: 'P2', what: `pick() with ${size} instances`, unit: 'picks/s', ours, baseline, baselineName: 'seed: health.service per pick', ratio: ours.median / baseline.median, target: '≥ 50 M picks/s', met: ours.median >= 50e6 })
      }
      return figures
    } finally {
      await app.close()
      await agent.stop()
    }
  }
}
