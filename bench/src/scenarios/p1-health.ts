import { startChildServer } from '../child-server.js'
import { load } from '../load.js'
import { sized, type Scenario } from '../scenario.js'
import { interleave, summarize } from '../stats.js'

export const p1: Scenario = {
  id: 'P1',
  title: '/health (2 checks) req/s ÷ bare /ping req/s, same app',
  async run (ctx) {
    const server = await startChildServer('health-server.js')
    const seconds = sized(ctx, 1, 5)
    try {
      // Warm both routes up (JIT, sockets) before measuring.
      await load(`${server.url}/ping`, 1)
      await load(`${server.url}/health`, 1)
      const { a, b } = await interleave(ctx.rounds, async () => (await load(`${server.url}/health`, seconds)).requestsPerSecond, async () => (await load(`${server.url}/ping`, seconds)).requestsPerSecond)
      const ours = summarize(a)
      const baseline = summarize(b)
      const ratios = a.map((x, i) => x / b[i]!)
      const ratio = summarize(ratios).median
      ctx.log(`P1 /health ${ours.median.toFixed(0)} req/s, /ping ${baseline.median.toFixed(0)} req/s, ratio ${ratio.toFixed(3)}`)
      return [{ id: 'P1', what: '/health req/s (2 checks)', unit: 'req/s', ours, baseline, baselineName: 'bare /ping, same app', ratio, target: '≥ 0.97×', met: ratio >= 0.97 }]
    } finally {
      await server.stop()
    }
  }
}
