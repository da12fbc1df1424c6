import { startConsul } from '@reg/testkit'
import { startChildServer, type ChildServer } from '../child-server.js'
import { load } from '../load.js'
import { untilPassing } from '../replicas.js'
import { sized, type Figure, type ScenarioContext, type Scenario } from '../scenario.js'
import { interleave, summarize } from '../stats.js'

async function compare (ctx: ScenarioContext, ours: ChildServer, fixed: ChildServer, what: string): Promise<Figure> {
  const seconds = sized(ctx, 1, 5)
  await load(`${ours.url}/users`, 1)
  await load(`${fixed.url}/users`, 1)
  const { a, b } = await interleave(ctx.rounds, async () => (await load(`${ours.url}/users`, seconds)).requestsPerSecond, async () => (await load(`${fixed.url}/users`, seconds)).requestsPerSecond)
  const ratio = summarize(a.map((x, i) => x / b[i]!)).median
  ctx.log(`P3 ${what}: discovery ${summarize(a).median.toFixed(0)} req/s, fixed ${summarize(b).median.toFixed(0)} req/s, ratio ${ratio.toFixed(3)}`)
  return { id: 'P3', what, unit: 'req/s', ours: summarize(a), baseline: summarize(b), baselineName: 'same proxy, one fixed upstream', ratio, target: '≥ 0.9×', met: ratio >= 0.9 }
}

export const p3: Scenario = {
  id: 'P3',
  title: 'proxied req/s through the discovery dispatcher ÷ to one fixed upstream',
  async run (ctx) {
    const agent = await startConsul()
    const env = { CONSUL_HTTP_ADDR: agent.address }
    const upstreams = await Promise.all([0, 1, 2].map((i) => startChildServer('echo-server.js', { ...env, SERVICE_ID: `echo-${i}` })))
    const proxies: ChildServer[] = []
    try {
      await untilPassing(agent, 3, 'echo')
      const fixed = await startChildServer('proxy-server.js', { ...env, MODE: 'fixed', UPSTREAM: upstreams[0]!.url })
      proxies.push(fixed)
      const one = await startChildServer('proxy-server.js', { ...env, MODE: 'discovery', TAG: 'echo-0' })
      proxies.push(one)
      const all = await startChildServer('proxy-server.js', { ...env, MODE: 'discovery' })
      proxies.push(all)
      // Same upstream process as the baseline: what the dispatcher itself costs. Then spread over three
      // upstream processes, which on a small machine also competes with them for the same cores.
      return [
        await compare(ctx, one, fixed, 'reply-from proxy, discovery of the same 1 upstream'),
        await compare(ctx, all, fixed, 'reply-from proxy, discovery over 3 upstreams')
      ]
    } finally {
      await Promise.all(proxies.map((p) => p.stop()))
      await Promise.all(upstreams.map((u) => u.stop()))
      await agent.stop()
    }
  }
}
