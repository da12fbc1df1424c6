import { setTimeout as sleep } from 'node:timers/promises'
import type { ConsulAgent } from '@reg/testkit'
import { killAll, passingIn, reported, restartAll, servedBy, type ReplicaSet } from './datacenters.js'
import { windowStats, type OpenLoop, type WindowStats } from './open-loop.js'
import { sized, type Figure, type ScenarioContext, type Window } from './scenario.js'
import { majorityAfter, shareOf } from './split.js'
import { summarize } from './stats.js'

// The drill P21 (a datacenter's replicas) and R16 (a zone's) share: under a caller's open loop, every
// replica of the caller's own group is killed (SIGKILL), the load runs on for a while after Consul
// reports them critical, then they are started again, and the load runs on after Consul reports them
// passing. Consul's two reports are the references: every caller that follows Consul waits for them.

export interface LossPhases {
  /** Seconds of load before the kill. */
  warmup: number
  /** Seconds the load runs on after Consul reported the group critical, before it is started again. */
  lost: number
  /** Seconds the load runs on after Consul reported the group passing again. */
  back: number
}

/** The drill's rate (BENCH_RATE, default 100 req/s) and phases, shorter in a smoke round. */
export function lossPhases (ctx: ScenarioContext): LossPhases & { rate: number } {
  return {
    rate: Number(process.env.BENCH_RATE ?? sized(ctx, 50, 100)),
    warmup: sized(ctx, 1, 2),
    lost: sized(ctx, 1, 3),
    back: sized(ctx, 2, 5)
  }
}

export interface LossAndReturn {
  /** Requests due from the kill to the end. */
  window: WindowStats
  /** Of those, the ones due from Consul's report of the group passing again (its return's cost). */
  failedBack: number
  /** Kill → Consul reports none of the group passing (ms). */
  criticalMs: number
  /** Consul reports the whole group passing again → the group serves the majority of answers again (ms); undefined: not in the window. */
  returnMs: number | undefined
  /** The group's share of the answers to the requests due in the `back` s after Consul's report. */
  homeShare: number
  /** Distinct replicas of the group that answered before the kill: every one was really served. */
  served: number
}

/**
 * A majority over this many answers (50 ms of the load, at least 5): one lucky pick is no majority, and
 * the run is short, since it bounds the time's resolution (a majority needs more than half of it).
 */
const runOf = (rate: number): number => Math.max(5, Math.round(rate / 20))

/**
 * Kills `home` (the replicas of `group`, registered on `agent`) under `loop`, starts them again once
 * Consul reported them critical and `lost` s passed, and reads the loop's samples. Stops the loop.
 */
export async function loseAndReturn (loop: OpenLoop, rate: number, agent: ConsulAgent, home: ReplicaSet, group: string, p: LossPhases): Promise<LossAndReturn> {
  const mine = servedBy(group)
  const kill = p.warmup * 1000
  await sleep(kill - loop.now())
  // Each report is parked before its change, so it answers at Consul's report and not a poll later.
  const critical = reported(agent, (passing) => passingIn(group, passing) === 0, loop.now)
  await killAll(home)
  const criticalAt = await critical
  await sleep(criticalAt + p.lost * 1000 - loop.now())
  const passing = reported(agent, (entries) => passingIn(group, entries) === home.replicas.length, loop.now)
  await restartAll(home)
  const passingAt = await passing
  const end = passingAt + p.back * 1000
  await sleep(end - loop.now())
  const samples = await loop.stop()
  const back = samples.filter((s) => s.ok && s.due >= passingAt && s.due < end)
  return {
    window: windowStats(samples, kill, end),
    failedBack: windowStats(samples, passingAt, end).failed,
    criticalMs: criticalAt - kill,
    returnMs: majorityAfter(samples, mine, passingAt, runOf(rate)),
    homeShare: shareOf(back, mine),
    served: new Set(samples.filter((s) => s.ok && s.due < kill && mine(s)).map((s) => s.instance)).size
  }
}

/** A run of the drill with the caller's trace (its local share at each change) and the log's extras. */
export interface TracedReturn extends LossAndReturn {
  trace: number[]
  /** The trace's changes of direction (split.ts `directionChanges`). */
  flips: number
  loadavg: number[]
}

/**
 * The return figures P21 and R16 share, ours against `peer` (the side named `peerSide` in the windows):
 * Consul's report of the group back → its majority (ms; a return not seen in the `back` s counts as
 * the whole window: it did not happen within it), and the trace's changes of direction (target 1).
 */
export function returnFigures (id: string, what: { time: string, flips: string }, back: number, ours: readonly TracedReturn[], peer: readonly TracedReturn[], peerSide: string, peerName: string): Figure[] {
  const returned = (r: TracedReturn): number => r.returnMs ?? back * 1000
  const windows = (pick: (r: TracedReturn) => number): Window[] => [
    ...ours.map((r, round) => ({ side: 'ours', round, value: pick(r), loadavg: r.loadavg })),
    ...peer.map((r, round) => ({ side: peerSide, round, value: pick(r), loadavg: r.loadavg }))
  ]
  const time = summarize(ours.map(returned))
  const timePeer = summarize(peer.map(returned))
  return [
    {
      id,
      what: what.time,
      unit: 'ms',
      ours: time,
      baseline: timePeer,
      baselineName: peerName,
      // Lower is better: the peer's time ÷ ours.
      ratio: timePeer.median / Math.max(1, time.median),
      target: 'returns in every round',
      met: ours.every((r) => r.returnMs !== undefined),
      windows: windows(returned)
    },
    {
      id,
      what: what.flips,
      unit: 'flips',
      ours: summarize(ours.map((r) => r.flips)),
      baseline: summarize(peer.map((r) => r.flips)),
      baselineName: peerName,
      ratio: null,
      target: '1 every round (no oscillation)',
      met: ours.every((r) => r.flips === 1),
      windows: windows((r) => r.flips)
    }
  ]
}
