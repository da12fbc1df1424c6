import { startConsul, type ConsulAgent } from '@reg/testkit'
import { consumer, loop, SEED_SERVICE, startReplicas, USER_SERVICE } from '../replicas.js'
import type { Scenario } from '../scenario.js'
import { interleave, summarize } from '../stats.js'

/** One rolling restart of 3 replicas under load; returns the load's counts. */
async function rollingRestart (agent: ConsulAgent, script: string): Promise<{ ok: number, failed: number }> {
  const set = await startReplicas(agent, script, 3)
  // A caller without retries or ejection, so the figure is the server's exit sequence alone: with our
  // retrying dispatcher even an abrupt exit is mostly papered over (P6 measures that side).
  const { app, dispatcher } = await consumer(agent, { retries: 0, ejectionMs: 0 })
  try {
    const load = loop(dispatcher, 8, 60_000)
    for (let i = 0; i < 3; i++) await set.restart(i, 'SIGTERM')
    return await load.stop()
  } finally {
    await app.close()
    await set.stop()
  }
}

export const p5: Scenario = {
  id: 'P5',
  title: 'rolling restart of 3 replicas under load: failed requests',
  async run (ctx) {
    const agent = await startConsul()
    try {
      const { a, b } = await interleave(ctx.rounds, () => rollingRestart(agent, USER_SERVICE), () => rollingRestart(agent, SEED_SERVICE))
      const ours = summarize(a.map((r) => r.failed))
      const baseline = summarize(b.map((r) => r.failed))
      const total = summarize(a.map((r) => r.ok + r.failed))
      ctx.log(`P5 ours: ${a.map((r) => `${r.failed}/${r.ok + r.failed}`).join(', ')} failed; seed: ${b.map((r) => `${r.failed}/${r.ok + r.failed}`).join(', ')} failed`)
      return [{
        id: 'P5',
        what: `failed requests in a rolling restart (median ${Math.round(total.median)} requests per run)`,
        unit: 'failed',
        ours,
        baseline,
        baselineName: 'seed: deregister, exit at once (same caller, no retries)',
        // Lower is better; +1 keeps the ratio finite when we fail none.
        ratio: (baseline.median + 1) / (ours.median + 1),
        target: 'ours 0 of ≥ 20 k',
        met: ours.max === 0 && total.min >= 20_000
      }]
    } finally {
      await agent.stop()
    }
  }
}
