import { startConsul } from '@reg/testkit'
import { startChildServer, type ChildServer } from '../child-server.js'
import { untilPassing } from '../replicas.js'
import type { Figure, Scenario, ScenarioContext } from '../scenario.js'
import { throughput } from '../throughput.js'

// P1 and P3 with the plugins' metrics on against the same servers with them off, in one run. "On" is the
// same server script started with an OpenTelemetry SDK set as the global MeterProvider before it runs
// (`--import` of a one-line module) and collected every second, as a Prometheus scrape would: the
// plugins read the global provider at registration, so the servers themselves are unchanged. "Off" is
// the API's no-op, what a user without an SDK gets.

/** The execArgv that turns metrics on in a child server. */
function metricsOn (): string[] {
  const testkit = import.meta.resolve('@reg/testkit')
  const source = `import { globalTestMeter } from ${JSON.stringify(testkit)}; globalTestMeter(1000)`
  return ['--import', `data:text/javascript,${encodeURIComponent(source)}`]
}

/**
 * The throughput figure of every other req/s comparison (warm-ups, interleaved rounds, loads that count
 * non-2xx and errors): metrics may cost at most 5 % of the req/s, read against the A/A noise.
 */
async function compare (ctx: ScenarioContext, what: string, on: ChildServer, off: ChildServer, path: string): Promise<Figure> {
  return throughput(ctx, { id: 'P14', what, ours: `${on.url}${path}`, baseline: `${off.url}${path}`, baselineName: 'the same server, metrics off (no SDK)', target: 0.95 })
}

export const p14: Scenario = {
  id: 'P14',
  title: 'P1 and P3 with the plugins\' OpenTelemetry metrics on ÷ off',
  async run (ctx) {
    const servers: ChildServer[] = []
    const agent = await startConsul()
    try {
      const healthOn = await startChildServer('health-server.js', {}, metricsOn())
      servers.push(healthOn)
      const healthOff = await startChildServer('health-server.js')
      servers.push(healthOff)
      const env = { CONSUL_HTTP_ADDR: agent.address }
      for (const i of [0, 1, 2]) servers.push(await startChildServer('echo-server.js', { ...env, SERVICE_ID: `echo-${i}` }))
      await untilPassing(agent, 3, 'echo')
      const proxyOn = await startChildServer('proxy-server.js', { ...env, MODE: 'discovery' }, metricsOn())
      servers.push(proxyOn)
      const proxyOff = await startChildServer('proxy-server.js', { ...env, MODE: 'discovery' })
      servers.push(proxyOff)
      return [
        await compare(ctx, 'P1 /health req/s (2 checks), metrics on ÷ off', healthOn, healthOff, '/health'),
        await compare(ctx, 'P3 proxied req/s over 3 upstreams, metrics on ÷ off', proxyOn, proxyOff, '/users')
      ]
    } finally {
      await Promise.all(servers.map((s) => s.stop()))
      await agent.stop()
    }
  }
}
