import { startConsul } from '@reg/testkit'
import { startChildServer } from '../child-server.js'
import { load } from '../load.js'
import { untilPassing } from '../replicas.js'
import { sized, type Scenario } from '../scenario.js'
import { interleave, summarize } from '../stats.js'

export const p3: Scenario = {
  id: 'P3',
  title: 'proxied req/s through the discovery dispatcher ÷ to one fixed upstream',
  async run (ctx) {
    const agent = await startConsul()
    const env = { CONSUL_HTTP_ADDR: agent.address }
    const upstreams = await Promise.all([0, 1, 2].map((i) => startChildServer('echo-server.js', { ...env, SERVICE_ID: `echo-${i}` })))
    try {
      await untilPassing(agent, 3, 'echo')
      const fixed = await startChildServer('proxy-server.js', { ...env, MODE: 'fixed', UPSTREAM: upstreams[0]!.url })
      const discovered = await startChildServer('proxy-server.js', { ...env, MODE: 'discovery' })
      try {
        const seconds = sized(ctx, 1, 5)
        await load(`${discovered.url}/users`, 1)
        await load(`${fixed.url}/users`, 1)
        const { a, b } = await interleave(ctx.rounds, async () => (await load(`${discovered.url}/users`, seconds)).requestsPerSecond, async () => (await load(`${fixed.url}/users`, seconds)).requestsPerSecond)
        const ours = summarize(a)
        const baseline = summarize(b)
        const ratio = summarize(a.map((x, i) => x / b[i]!)).median
        ctx.log(`P3 discovery ${ours.median.toFixed(0)} req/s, fixed ${baseline.median.toFixed(0)} req/s, ratio ${ratio.toFixed(3)}`)
        return [{ id: 'P3', what: 'reply-from proxy req/s, 3 upstreams', unit: 'req/s', ours, baseline, baselineName: 'same proxy, one fixed upstream', ratio, target: '≥ 0.9×', met: ratio >= 0.9 }]
      } finally {
        await fixed.stop()
        await discovered.stop()
      }
    } finally {
      await Promise.all(upstreams.map((u) => u.stop()))
      await agent.stop()
    }
  }
}
