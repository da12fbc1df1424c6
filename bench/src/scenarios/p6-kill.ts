import { loadavg } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { startConsul, type ConsulAgent } from '@reg/testkit'
import { describeRuns, failureFigure, type RunCount } from '../failures.js'
import { openLoop, windowStats, type WindowStats } from '../open-loop.js'
import { consumer, startReplicas, USER_SERVICE } from '../replicas.js'
import { sized, type Scenario } from '../scenario.js'
import { interleave, summarize } from '../stats.js'

interface KillRun { after: WindowStats, loadavg: number[] }

/**
 * kill -9 one of 3 replicas under an open-loop load at a fixed rate (an availability figure: DESIGN.md
 * "Measuring"), through our dispatcher with or without retry and ejection; the requests due in the
 * `seconds` after the kill, and how long they took.
 */
async function killOne (agent: ConsulAgent, rate: number, seconds: number, retrying: boolean): Promise<KillRun> {
  const set = await startReplicas(agent, USER_SERVICE, 3)
  const { app, dispatcher } = await consumer(agent, retrying ? {} : { retries: 0, ejectionMs: 0 })
  const loop = openLoop('http://user-service/users', { rate, dispatcher })
  try {
    await sleep(1000)
    const at = loop.now()
    set.replicas[1]!.child.kill('SIGKILL')
    await sleep(seconds * 1000)
    const samples = await loop.stop()
    return { after: windowStats(samples, at, at + seconds * 1000), loadavg: loadavg() }
  } finally {
    await loop.stop()
    await app.close()
    await set.stop()
  }
}

const counts = (r: KillRun): RunCount => ({ ok: r.after.sent - r.after.failed, non2xx: r.after.failed, errors: 0 })

export const p6: Scenario = {
  id: 'P6',
  title: 'kill -9 one of 3 replicas under a fixed-rate load: failed requests and p99',
  async run (ctx) {
    const agent = await startConsul()
    const seconds = sized(ctx, 1, 3)
    const rate = Number(process.env.BENCH_RATE ?? sized(ctx, 50, 100))
    try {
      const { a, b } = await interleave(ctx.rounds, () => killOne(agent, rate, seconds, true), () => killOne(agent, rate, seconds, false))
      ctx.log(`P6 failed/due, ours: ${describeRuns(a.map(counts))}, p99 ${a.map((r) => r.after.p99.toFixed(0)).join('/')} ms; without retry or ejection: ${describeRuns(b.map(counts))}, p99 ${b.map((r) => r.after.p99.toFixed(0)).join('/')} ms`)
      const windows = (pick: (r: KillRun) => number) => [
        ...a.map((r, round) => ({ side: 'ours', round, value: pick(r), loadavg: r.loadavg })),
        ...b.map((r, round) => ({ side: 'baseline', round, value: pick(r), loadavg: r.loadavg }))
      ]
      const baselineName = 'negative control: our dispatcher without retry or ejection'
      const what = (s: string): string => `${s} in the ${seconds} s after kill -9 of 1 of 3, ${rate} req/s offered`
      const p99 = { ours: summarize(a.map((r) => r.after.p99)), baseline: summarize(b.map((r) => r.after.p99)) }
      return [
        { ...failureFigure({ id: 'P6', what: what('failed GETs'), baselineName, target: 'ours 0', ours: a.map(counts), baseline: b.map(counts) }), windows: windows((r) => r.after.failed) },
        { id: 'P6', what: what('p99 latency'), unit: 'ms', ...p99, baselineName, ratio: p99.baseline.median / p99.ours.median, target: '–', met: undefined, windows: windows((r) => r.after.p99) }
      ]
    } finally {
      await agent.stop()
    }
  }
}
