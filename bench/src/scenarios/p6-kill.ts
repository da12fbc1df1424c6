import { setTimeout as sleep } from 'node:timers/promises'
import { startConsul, type ConsulAgent } from '@reg/testkit'
import { consumer, loop, startReplicas, USER_SERVICE } from '../replicas.js'
import { sized, type Scenario } from '../scenario.js'
import { interleave, summarize } from '../stats.js'

/** kill -9 one of 3 replicas under load and keep loading for a while; returns the load's counts. */
async function killOne (agent: ConsulAgent, seconds: number, retrying: boolean): Promise<{ ok: number, failed: number }> {
  const set = await startReplicas(agent, USER_SERVICE, 3)
  const { app, dispatcher } = await consumer(agent, retrying ? {} : { retries: 0, ejectionMs: 0 })
  try {
    const load = loop(dispatcher, 8, 60_000)
    await sleep(300)
    set.replicas[1]!.child.kill('SIGKILL')
    await sleep(seconds * 1000)
    return await load.stop()
  } finally {
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
      const ours = summarize(a.map((r) => r.failed))
      const baseline = summarize(b.map((r) => r.failed))
      ctx.log(`P6 ours: ${a.map((r) => `${r.failed}/${r.ok + r.failed}`).join(', ')} failed; no retry/ejection: ${b.map((r) => `${r.failed}/${r.ok + r.failed}`).join(', ')} failed`)
      return [{
        id: 'P6',
        what: `failed GETs in the ${seconds} s after kill -9 of 1 of 3`,
        unit: 'failed',
        ours,
        baseline,
        baselineName: 'same dispatcher, retries 0, no ejection',
        ratio: (baseline.median + 1) / (ours.median + 1),
        target: 'ours 0',
        met: ours.max === 0
      }]
    } finally {
      await agent.stop()
    }
  }
}
