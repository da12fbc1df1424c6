import { setTimeout as sleep } from 'node:timers/promises'
import { startLoad, type Load } from '@reg/user-service/test/fixtures/request-loop.js'
import { startConsul, type ConsulAgent } from '@reg/testkit'
import { describeRuns, failureFigure } from '../failures.js'
import { consumer, startReplicas, USER_SERVICE } from '../replicas.js'
import { sized, type Scenario } from '../scenario.js'
import { interleave } from '../stats.js'

/** kill -9 one of 3 replicas under load and keep loading for a while; returns the load's counts. */
async function killOne (agent: ConsulAgent, seconds: number, retrying: boolean): Promise<Load> {
  const set = await startReplicas(agent, USER_SERVICE, 3)
  const { app, dispatcher } = await consumer(agent, retrying ? {} : { retries: 0, ejectionMs: 0 })
  const load = startLoad('http://user-service/users', dispatcher, 8, 60_000)
  try {
    await sleep(300)
    set.replicas[1]!.child.kill('SIGKILL')
    await sleep(seconds * 1000)
    return load
  } finally {
    await load.stop()
    await app.close()
    await set.stop()
  }
}

export const p6: Scenario = {
  id: 'P6',
  title: 'kill -9 one of 3 replicas under load: failed requests',
  async run (ctx) {
    const agent = await startConsul()
    const seconds = sized(ctx, 1, 3)
    try {
      const { a, b } = await interleave(ctx.rounds, () => killOne(agent, seconds, true), () => killOne(agent, seconds, false))
      ctx.log(`P6 failed/sent, ours: ${describeRuns(a)}; without retry or ejection: ${describeRuns(b)}`)
      return [failureFigure({
        id: 'P6',
        what: `failed GETs in the ${seconds} s after kill -9 of 1 of 3`,
        baselineName: 'our dispatcher without retry or ejection',
        target: 'ours 0',
        ours: a,
        baseline: b
      })]
    } finally {
      await agent.stop()
    }
  }
}
