import { startConsul } from '@reg/testkit'
import { startChildServer, type ChildServer } from '../child-server.js'
import { untilPassing } from '../replicas.js'
import type { Scenario } from '../scenario.js'
import { throughput } from '../throughput.js'

export const p3: Scenario = {
  id: 'P3',
  title: 'proxied req/s through the discovery dispatcher ÷ the same proxy to the same upstreams without discovery',
  async run (ctx) {
    const agent = await startConsul()
    const env = { CONSUL_HTTP_ADDR: agent.address }
    const upstreams = await Promise.all([0, 1, 2].map((i) => startChildServer('echo-server.js', { ...env, SERVICE_ID: `echo-${i}` })))
    const proxies: ChildServer[] = []
    const proxy = async (penv: Record<string, string>): Promise<ChildServer> => {
      const p = await startChildServer('proxy-server.js', { ...env, ...penv })
      proxies.push(p)
      return p
    }
    try {
      await untilPassing(agent, 3, 'echo')
      // Each pair does the same work on both sides: the same upstream processes, the same proxy code;
      // only how the proxy finds its upstreams differs. With 1 upstream that is the dispatcher's own
      // cost; over 3, a static undici BalancedPool is what one writes without discovery.
      const one = await proxy({ MODE: 'discovery', TAG: 'echo-0' })
      const fixed = await proxy({ MODE: 'static', UPSTREAMS: upstreams[0]!.url })
      const three = await proxy({ MODE: 'discovery' })
      const pool = await proxy({ MODE: 'static', UPSTREAMS: upstreams.map((u) => u.url).join(',') })
      return [
        await throughput(ctx, { id: 'P3', what: 'reply-from proxy, discovery of 1 upstream', ours: `${one.url}/users`, baseline: `${fixed.url}/users`, baselineName: 'same proxy, the same 1 upstream fixed', target: 0.9 }),
        await throughput(ctx, { id: 'P3', what: 'reply-from proxy, discovery over 3 upstreams', ours: `${three.url}/users`, baseline: `${pool.url}/users`, baselineName: 'same proxy, static BalancedPool over the same 3 upstreams', target: 0.9 })
      ]
    } finally {
      await Promise.all(proxies.map((p) => p.stop()))
      await Promise.all(upstreams.map((u) => u.stop()))
      await agent.stop()
    }
  }
}
