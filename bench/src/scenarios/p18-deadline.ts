import { loadavg } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ConsulAgent } from '@reg/testkit'
import { OURS_STEADY, onFreshReplicas, servedReplicas, sideRounds, type Front } from '../fronts.js'
import { openLoop, windowStats, type Sample } from '../open-loop.js'
import { TAIL_SERVER, triesAt } from '../replicas.js'
import { sized, type Figure, type Scenario, type Window } from '../scenario.js'
import { summarize } from '../stats.js'

// #23: deadlines that travel. Callers send a 300 ms budget (x-envoy-expected-rq-timeout-ms) through our
// gateway while 1 of 3 replicas is frozen (SIGSTOP). Each must get its answer, or a 504, within
// 300 + 20 ms, and no try may reach a replica after the caller's deadline: the load also sends the
// deadline as an epoch-ms header that the replicas compare with their clock (the frozen one is left
// out: it reads its requests only when thawed). The negative control is the same gateway with callers
// that send no budget: they wait for the 2 s per-try timeout. Hedging is off on both sides, so what is
// measured is the deadline alone (a hedge would rescue most stuck requests first; P16 measures that).
// HAProxy has no deadline to propagate.

const SIDES = ['ours', 'no-deadline'] as const
type Side = typeof SIDES[number]
const BUDGET_MS = 300
const NO_HEDGE = { ...OURS_STEADY, hedge: false }
const BOUND_MS = BUDGET_MS + 20

interface DeadlineRun { sent: number, over: number, answered: number, late: number, max: number, loadavg: number[] }
interface Phases { rate: number, warmup: number, freeze: number }

async function deadlineRun (agent: ConsulAgent, front: () => Promise<Front>, p: Phases, budget: boolean): Promise<DeadlineRun> {
  return await onFreshReplicas(agent, front, async (url, _f, frozen, ports) => {
    await servedReplicas(url)
    const headers = budget ? () => ({ 'x-envoy-expected-rq-timeout-ms': String(BUDGET_MS), 'x-bench-deadline-at': String(Date.now() + BUDGET_MS) }) : () => ({ 'x-bench-deadline-at': String(Date.now() + BUDGET_MS) })
    const loop = openLoop(url, { rate: p.rate, headers })
    const a = p.warmup * 1000
    const b = a + p.freeze * 1000
    await sleep(a - loop.now())
    const before = await triesAt(ports)
    frozen.kill('SIGSTOP')
    await sleep(b - loop.now())
    const samples = await loop.stop()
    const after = await triesAt(ports.filter((_, i) => i !== 1))
    frozen.kill('SIGCONT')
    const live = before.filter((_, i) => i !== 1)
    const inWindow = samples.filter((s: Sample) => s.due >= a && s.due < b)
    const w = windowStats(samples, a, b)
    return {
      sent: w.sent,
      over: inWindow.filter((s) => s.done - s.due > BOUND_MS).length,
      answered: inWindow.filter((s) => s.ok).length,
      late: after.reduce((sum, t, i) => sum + t.late - live[i]!.late, 0),
      max: w.max,
      loadavg: loadavg()
    }
  }, { script: TAIL_SERVER })
}

function figures (runs: Record<Side, DeadlineRun[]>, p: Phases): Figure[] {
  const what = (s: string): string => `${s}, ${BUDGET_MS} ms budgets while 1 of 3 replicas is frozen ${p.freeze} s, ${p.rate} req/s`
  const windows = (pick: (r: DeadlineRun) => number): Window[] => SIDES.flatMap((side) => runs[side].map((r, round) => ({ side, round, value: pick(r), loadavg: r.loadavg })))
  const figure = (name: string, unit: string, pick: (r: DeadlineRun) => number, target: string, met: boolean | undefined): Figure => ({
    id: 'P18',
    what: what(name),
    unit,
    ours: summarize(runs.ours.map(pick)),
    baseline: summarize(runs['no-deadline'].map(pick)),
    baselineName: 'negative control: the same gateway (hedging off on both sides), callers sending no budget',
    ratio: null,
    target,
    met,
    windows: windows(pick)
  })
  return [
    figure(`requests not answered (nor 504) within ${BOUND_MS} ms`, 'requests', (r) => r.over, 'ours 0 in every round', runs.ours.every((r) => r.over === 0)),
    figure('tries that reached a replica after the caller\'s deadline', 'tries', (r) => r.late, 'ours 0 in every round', runs.ours.every((r) => r.late === 0)),
    figure('requests answered 2xx', 'requests', (r) => r.answered, '–', undefined),
    figure('max latency', 'ms', (r) => r.max, `≤ ${BOUND_MS} ms`, runs.ours.every((r) => r.max <= BOUND_MS))
  ]
}

export const p18: Scenario = {
  id: 'P18',
  title: 'deadlines: 300 ms budgets through our gateway while a replica is frozen, against callers without one',
  async run (ctx) {
    const p: Phases = { rate: Number(process.env.BENCH_RATE ?? sized(ctx, 50, 100)), warmup: sized(ctx, 1, 3), freeze: sized(ctx, 3, 8) }
    // One gateway configuration for both sides; only the callers differ (they send a budget or not).
    let budgeted: (() => Promise<Front>) | undefined
    const fronts = ({ gateway }: { gateway: (discovery: object) => () => Promise<Front> }): Record<Side, () => Promise<Front>> => {
      budgeted = gateway(NO_HEDGE)
      return { ours: budgeted, 'no-deadline': gateway(NO_HEDGE) }
    }
    const runs = await sideRounds(ctx, SIDES, fronts, async (agent, front) => await deadlineRun(agent, front, p, front === budgeted), (round, side, r) => {
      ctx.log(`P18 round ${round + 1} ${side}: ${r.over} of ${r.sent} over ${BOUND_MS} ms, ${r.answered} answered 2xx, max ${r.max.toFixed(0)} ms, ${r.late} tries after the deadline; load ${r.loadavg[0]!.toFixed(2)}`)
    })
    return figures(runs, p)
  }
}
