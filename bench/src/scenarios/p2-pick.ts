import consulPlugin from '@reg/fastify-consul'
import { startConsul } from '@reg/testkit'
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
  title: 'pick() ÷ a plain array round-robin index over the same instances',
  async run (ctx) {
    const agent = await startConsul()
    const app = Fastify()
    const figures: Figure[] = []
    try {
      await app.register(consulPlugin, { service: { name: 'p2' }, register: false, consul: { address: agent.address } })
      await app.ready()
      for (const size of [3, 1000]) {
        const name = `p2-${size}`
        await registerMany(agent, name, size)
        const watch = app.consul.discover(name)
        await watch.ready
        // The agent syncs registrations to the catalog asynchronously; measure the full set.
        /* c8 ignore next -- whether the sync already finished by now is timing */
        while (watch.instances.length < size) await new Promise((resolve) => watch.on('change', resolve))
        // The floor of any picker: the next slot of a fixed array, nothing to decide. This machine's speed
        // on this run divides out; the absolute rate stays in the table as information.
        const array = [...watch.instances]
        let next = 0
        let sink = 0
        const ms = sized(ctx, 200, 1000)
        const { a, b } = await interleave(ctx.rounds,
          () => rate(ms, 10_000, () => { sink += watch.pick().port }),
          () => rate(ms, 10_000, () => { sink += array[next++ % array.length]!.port }))
        watch.close()
        const ours = summarize(a)
        const baseline = summarize(b)
        const ratio = summarize(a.map((x, i) => x / b[i]!)).median
        // The checksum is printed so the picks cannot be optimised away.
        ctx.log(`P2 ${size} instances: pick() ${(ours.median / 1e6).toFixed(1)} M/s, array round-robin ${(baseline.median / 1e6).toFixed(1)} M/s, ratio ${ratio.toFixed(3)} (checksum ${sink % 997})`)
        figures.push({ id: 'P2', what: `pick() with ${size} instances`, unit: 'picks/s', ours, baseline, baselineName: 'plain array round-robin index, same instances', ratio, target: '≥ 0.5×', met: ratio >= 0.5 })
      }
      return figures
    } finally {
      await app.close()
      await agent.stop()
    }
  }
}
