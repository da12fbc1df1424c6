import { loadavg } from 'node:os'
import { startLoad, type Load } from '@reg/user-service/test/fixtures/request-loop.js'
import { startConsul, type ConsulAgent } from '@reg/testkit'
import { describeRuns, failureFigure } from '../failures.js'
import { consumer, SEED_EXIT, startReplicas, USER_SERVICE } from '../replicas.js'
import { sized, type Scenario } from '../scenario.js'
import { interleave } from '../stats.js'

// The load of the app's rolling-restart test: 24 GET loops keep enough requests in flight that an exit
// which drops them shows it.
const WORKERS = 24

/**
 * One rolling restart of 3 replicas under load, by a caller without retries or ejection: the figure is
 * the server's exit sequence alone (with our retrying dispatcher even an abrupt exit is mostly papered
 * over; P6 measures that side). The load starts before the first restart and runs on after the last
 * until it has `minRequests` answered, so every run is at least that large.
 */
async function rollingRestart (agent: ConsulAgent, script: string, minRequests: number): Promise<Load & { loadavg: number[] }> {
  const set = await startReplicas(agent, script, 3)
  const { app, dispatcher } = await consumer(agent, { retries: 0, ejectionMs: 0 })
  const load = startLoad('http://user-service/users', dispatcher, WORKERS, 180_000)
  try {
    await load.reach(minRequests / 10)
    for (let i = 0; i < 3; i++) await set.restart(i, 'SIGTERM')
    await load.reach(Math.max(minRequests, load.ok + minRequests / 10))
    return Object.assign(load, { loadavg: loadavg() })
  } finally {
    await load.stop()
    await app.close()
    await set.stop()
  }
}

export const p5: Scenario = {
  id: 'P5',
  title: 'rolling restart of 3 replicas under load: failed requests',
  async run (ctx) {
    const agent = await startConsul()
    const minRequests = sized(ctx, 1000, 20_000)
    try {
      const { a, b } = await interleave(ctx.rounds, () => rollingRestart(agent, USER_SERVICE, minRequests), () => rollingRestart(agent, SEED_EXIT, minRequests))
      ctx.log(`P5 failed/sent, ours: ${describeRuns(a)}; seed's exit: ${describeRuns(b)}`)
      return [failureFigure({
        id: 'P5',
        what: 'failed requests in a rolling restart of 3, caller without retries',
        baselineName: 'same app with the seed\'s exit: deregister, exit at once',
        target: 'ours 0 of ≥ 20 k per run',
        ours: a,
        baseline: b,
        minRequests: 20_000
      })]
    } finally {
      await agent.stop()
    }
  }
}
