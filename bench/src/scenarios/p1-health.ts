import { startChildServer } from '../child-server.js'
import type { Scenario } from '../scenario.js'
import { throughput } from '../throughput.js'

export const p1: Scenario = {
  id: 'P1',
  title: '/health (2 checks) req/s ÷ bare /ping req/s, same app',
  async run (ctx) {
    const server = await startChildServer('health-server.js')
    try {
      return [await throughput(ctx, { id: 'P1', what: '/health req/s (2 checks)', ours: `${server.url}/health`, baseline: `${server.url}/ping`, baselineName: 'bare /ping, same app', target: 0.97 })]
    } finally {
      await server.stop()
    }
  }
}
