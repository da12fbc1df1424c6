import { loadavg } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ConsulAgent } from '@reg/testkit'
import { HAPROXY_NAME, OURS_STEADY, onFreshReplicas, servedReplicas, sideRounds, type Front } from '../fronts.js'
import { openLoop, windowStats, type WindowStats } from '../open-loop.js'
import { sized, type Figure, type Scenario, type Window } from '../scenario.js'
import { summarize } from '../stats.js'

// #30: probing must not turn a flapping replica into a stream of stalls. Replica 1 is frozen 2 s of
// every 5 s for a minute under a fixed-rate load, through ours and through HAProxy as a fair peer: the
// requests that fail, and the ones stuck for over 1 s (the per-try timeout is 2 s on both).

const SIDES = ['ours', 'haproxy'] as const
type Side = typeof SIDES[number]

interface Phases { rate: number, warmup: number, cycles: number, frozenMs: number, periodMs: number }

interface FlapRun { stats: WindowStats, loadavg: number[] }

async function flapRun (agent: ConsulAgent, front: () => Promise<Front>, p: Phases): Promise<FlapRun> {
  return await onFreshReplicas(agent, front, async (url, _f, flapping) => {
    await servedReplicas(url)
    const loop = openLoop(url, { rate: p.rate })
    const start = p.warmup * 1000
    for (let cycle = 0; cycle < p.cycles; cycle++) {
      const at = start + cycle * p.periodMs
      await sleep(at - loop.now())
      flapping.kill('SIGSTOP')
      await sleep(at + p.frozenMs - loop.now())
      flapping.kill('SIGCONT')
    }
    const end = start + p.cycles * p.periodMs
    await sleep(end - loop.now())
    const samples = await loop.stop()
    return { stats: windowStats(samples, start, end), loadavg: loadavg() }
  })
}

function figures (runs: Record<Side, FlapRun[]>, p: Phases): Figure[] {
  const what = (s: string): string => `${s} while 1 of 3 replicas is frozen ${p.frozenMs / 1000} s of every ${p.periodMs / 1000} s for ${p.cycles * p.periodMs / 1000} s, ${p.rate} req/s offered`
  const windows = (pick: (w: WindowStats) => number): Window[] => SIDES.flatMap((side) => runs[side].map((r, round) => ({ side, round, value: pick(r.stats), loadavg: r.loadavg })))
  const failed = runs.ours.map((r) => r.stats.failed)
  const slow = runs.ours.map((r) => r.stats.slow)
  const slowPeer = runs.haproxy.map((r) => r.stats.slow)
  return [{
    id: 'R20',
    what: what('failed requests'),
    unit: 'failed',
    ours: summarize(failed),
    baseline: summarize(runs.haproxy.map((r) => r.stats.failed)),
    baselineName: HAPROXY_NAME,
    ratio: null,
    target: 'ours 0',
    met: failed.every((n) => n === 0),
    requests: { ours: summarize(runs.ours.map((r) => r.stats.sent)), baseline: summarize(runs.haproxy.map((r) => r.stats.sent)) },
    windows: windows((w) => w.failed)
  }, {
    id: 'R20',
    what: what('requests slower than 1 s'),
    unit: 'slow',
    ours: summarize(slow),
    baseline: summarize(slowPeer),
    baselineName: HAPROXY_NAME,
    ratio: null,
    target: '≤ the peer\'s in every round',
    met: slow.every((n, i) => n <= slowPeer[i]!),
    windows: windows((w) => w.slow)
  }]
}

export const r20: Scenario = {
  id: 'R20',
  title: 'a flapping replica (frozen 2 s of every 5 s): failed and stuck requests, ours against HAProxy',
  async run (ctx) {
    const p: Phases = {
      rate: Number(process.env.BENCH_RATE ?? sized(ctx, 50, 100)),
      warmup: sized(ctx, 1, 2),
      cycles: sized(ctx, 2, 12),
      frozenMs: 2000,
      periodMs: 5000
    }
    const runs = await sideRounds(ctx, SIDES, ({ gateway, haproxy }) => ({ ours: gateway(OURS_STEADY), haproxy }), async (agent, front) => await flapRun(agent, front, p), (round, side, run) => {
      const w = run.stats
      ctx.log(`R20 round ${round + 1} ${side}: ${w.failed} failed, ${w.slow} > 1 s of ${w.sent}; p99 ${w.p99.toFixed(0)} ms, max ${w.max.toFixed(0)} ms; load ${run.loadavg[0]!.toFixed(2)}`)
    })
    return figures(runs, p)
  }
}
