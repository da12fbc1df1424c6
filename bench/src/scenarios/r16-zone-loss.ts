import { loadavg } from 'node:os'
import type { DispatcherOptions } from '@reg/fastify-consul'
import { startConsul, type ConsulAgent } from '@reg/testkit'
import { GATEWAY_DISCOVERY, ours, replicasIn, splitTrace, type ReplicaSet } from '../datacenters.js'
import { failureFigure } from '../failures.js'
import { loseAndReturn, lossPhases, returnFigures, type LossPhases, type TracedReturn } from '../loss-and-return.js'
import { type Figure, type Scenario, type Window } from '../scenario.js'
import { directionChanges, msOrNever } from '../split.js'
import { rotatedRounds, summarize } from '../stats.js'

// #25: a zone is lost. Four user-service replicas on one agent, two in zone a (REG_ZONE=a, registered as
// meta `zone`) and two in zone b; the caller lives in zone a and prefers it (`locality: { zone: 'a' }`,
// what the gateway does with REG_ZONE=a). Under an open-loop load at a fixed rate both zone-a replicas
// are killed (SIGKILL); once Consul reports them critical (their HTTP check, up to 10 s later) the load
// runs on, then zone a is started again. Read: failed requests over the whole drill (target 0), and the
// time from Consul reporting zone a passing again to zone a serving the majority of answers again,
// with the trace of the caller's split (a loss and its return is one change of direction).
// Sides: ours; the same dispatcher without retry or ejection (the negative control: it must lose the
// requests that meet the dead zone before Consul notices, or the drill did not bite); and ours without
// locality, the reference for the return (without a preferred zone, zone a never takes most traffic).
// The dispatcher in the bench process rather than the gateway's process: the gateway routes through
// this same dispatcher with these options (apps/gateway DEFAULTS.discovery, REG_ZONE → locality), and
// in-process the split can be traced at each change, not sampled through a debug route.

const SIDES = ['ours', 'no-retry', 'no-locality'] as const
type Side = typeof SIDES[number]

const NAMES: Record<Side, string> = {
  ours: 'ours',
  'no-retry': 'negative control: the same dispatcher with locality, without retry or ejection',
  'no-locality': 'the same dispatcher without locality (either zone, by load)'
}

/** The caller's zone, and the other. */
const HOME = 'a'
const AWAY = 'b'
/** Replicas per zone. */
const PER_ZONE = 2

const OPTIONS: Record<Side, DispatcherOptions> = {
  ours: { ...GATEWAY_DISCOVERY, locality: { zone: HOME } },
  'no-retry': { ...GATEWAY_DISCOVERY, locality: { zone: HOME }, retries: 0, ejectionMs: 0 },
  'no-locality': GATEWAY_DISCOVERY
}

interface Phases extends LossPhases { rate: number }

/** The trace: the caller's zone's share of traffic at each change of its split. */
interface ZoneRun extends TracedReturn {
  /** The dispatcher's retry and ejection counters after the run. */
  counters: string
}

async function zoneRun (agent: ConsulAgent, side: Side, p: Phases): Promise<ZoneRun> {
  // Replicas 0 and 1 in zone a, 2 and 3 in zone b: one set on one agent; the zone killed is its first two.
  const all = await replicasIn(agent, (i) => { const zone = i < PER_ZONE ? HOME : AWAY; return { group: zone, zone } }, 2 * PER_ZONE)
  const home: ReplicaSet = { ...all, replicas: all.replicas.slice(0, PER_ZONE) }
  const c = await ours(agent, OPTIONS[side])
  const trace = splitTrace(c.dispatcher)
  const loop = c.load(p.rate)
  try {
    const run = await loseAndReturn(loop, p.rate, agent, home, HOME, p)
    trace.stop()
    return { ...run, trace: trace.values, flips: directionChanges(trace.values), counters: c.counters!(), loadavg: loadavg() }
  } finally {
    trace.stop()
    await loop.stop()
    await c.close()
    await all.stop()
  }
}

function figures (runs: Record<Side, ZoneRun[]>, p: Phases): Figure[] {
  const what = (s: string): string => `${s}, 2 zones × 2 replicas, the caller's zone killed (SIGKILL) and started again, ${p.rate} req/s offered`
  const counts = (side: Side) => runs[side].map((r) => ({ ok: r.window.sent - r.window.failed, non2xx: r.window.failed, errors: 0, loadavg: r.loadavg }))
  const windows = (pick: (r: ZoneRun) => number, sides: readonly Side[]): Window[] => sides.flatMap((side) => runs[side].map((r, round) => ({ side, round, value: pick(r), loadavg: r.loadavg })))
  const share = runs.ours.map((r) => r.homeShare)
  const shareRef = runs['no-locality'].map((r) => r.homeShare)
  return [
    failureFigure({
      id: 'R16',
      what: what(`failed GETs from the kill to ${p.back} s after Consul reported zone a passing again`),
      baselineName: NAMES['no-retry'],
      target: 'ours 0',
      ours: counts('ours'),
      baseline: counts('no-retry')
    }),
    {
      id: 'R16',
      what: what(`zone a's share of the answers in the ${p.back} s after Consul reported it passing again`),
      unit: 'of answers',
      ours: summarize(share),
      baseline: summarize(shareRef),
      baselineName: NAMES['no-locality'],
      /* c8 ignore next -- whether zone a answered anything without locality in a smoke round's short window is timing */
      ratio: summarize(shareRef).median > 0 ? summarize(share).median / summarize(shareRef).median : null,
      target: '> 0.5 every round',
      met: share.every((s) => s > 0.5),
      windows: windows((r) => r.homeShare, ['ours', 'no-locality'])
    },
    ...returnFigures('R16', {
      time: what('Consul reports zone a passing again → zone a serves the majority of answers again (ms)'),
      flips: what('changes of direction of the caller\'s split (a loss and its return is 1)')
    }, p.back, runs.ours, runs['no-retry'], 'no-retry', NAMES['no-retry'])
  ]
}

export const r16: Scenario = {
  id: 'R16',
  title: 'the caller\'s zone lost and back under a fixed-rate load: locality over 2 zones × 2 replicas (ours, without retry, without locality)',
  async run (ctx) {
    const p: Phases = lossPhases(ctx)
    const agent = await startConsul()
    try {
      // Fresh replicas every run, the sides' order rotated each round so that none always runs first.
      const runs = await rotatedRounds(ctx.rounds, SIDES, async (side) => await zoneRun(agent, side, p), (round, side, r) => {
        const w = r.window
        ctx.log(`R16 round ${round + 1} ${side}: zone a served by ${r.served} replicas; kill → Consul reports zone a critical ${r.criticalMs.toFixed(0)} ms; from the kill to the end: ${w.failed} failed of ${w.sent} (${r.failedBack} after zone a's return), p99 ${w.p99.toFixed(0)} ms; Consul reports zone a back → its majority ${msOrNever(r.returnMs)}, its share ${r.homeShare.toFixed(3)}; split trace ${r.trace.map((x) => x.toFixed(2)).join(' → ')} (${r.flips} changes of direction); ${r.counters}; load ${r.loadavg[0]!.toFixed(2)}`)
      })
      return figures(runs, p)
    } finally {
      await agent.stop()
    }
  }
}
