import { startConsul } from '@reg/testkit'
import { startChildServer } from '../child-server.js'
import { registerMany } from '../register-many.js'
import { sized, type Scenario } from '../scenario.js'
import { summarize } from '../stats.js'

const MB = 1024 * 1024

export const p7: Scenario = {
  id: 'P7',
  title: 'RSS added by the plugins, and by one watch on 1,000 instances',
  async run (ctx) {
    const agent = await startConsul()
    try {
      await registerMany(agent, 'rss-many', 1000)
      const env = { CONSUL_HTTP_ADDR: agent.address, WATCH_SERVICE: 'rss-many' }
      const measure = async (mode: string): Promise<number> => {
        const probe = await startChildServer('rss-probe.js', { ...env, MODE: mode }, ['--expose-gc'])
        await probe.stop()
        return probe.message.rss! / MB
      }
      const bare: number[] = []
      const plugins: number[] = []
      const watch: number[] = []
      // A fresh process per sample, interleaved, so heap growth from earlier samples cannot leak in.
      // RSS is noisy (allocator timing, pages not yet returned): at least 7 samples per shape.
      for (let i = 0; i < sized(ctx, 1, Math.max(7, ctx.rounds)); i++) {
        bare.push(await measure('bare'))
        plugins.push(await measure('plugins'))
        watch.push(await measure('watch'))
      }
      const b = summarize(bare)
      const p = summarize(plugins)
      const w = summarize(watch)
      const addedByPlugins = p.median - b.median
      const addedByWatch = w.median - p.median
      ctx.log(`P7 RSS median: bare ${b.median.toFixed(1)} MB, plugins ${p.median.toFixed(1)} MB (+${addedByPlugins.toFixed(1)}), watch on 1,000 ${w.median.toFixed(1)} MB (+${addedByWatch.toFixed(1)})`)
      return [
        { id: 'P7', what: 'RSS with health + consul registered', unit: 'MB', ours: p, baseline: b, baselineName: 'bare Fastify', ratio: b.median / p.median, target: '≤ +8 MB', met: addedByPlugins <= 8 },
        { id: 'P7', what: 'RSS with one watch on 1,000 instances', unit: 'MB', ours: w, baseline: p, baselineName: 'plugins, no watch', ratio: p.median / w.median, target: '≤ +15 MB', met: addedByWatch <= 15 }
      ]
    } finally {
      await agent.stop()
    }
  }
}
