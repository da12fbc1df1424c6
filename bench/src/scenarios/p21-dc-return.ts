import { loadavg } from 'node:os'
import { createPreparedQuery, type PreparedQuery } from '../consul-lookups.js'
import { LOCAL, oursWithFailover, ANCHOR_NAMES, OURS_AND_ANCHOR, REPLICAS_PER_DC, preparedQueryCaller, REMOTE, replicasIn, splitTrace, startDatacenters, type Caller, type Datacenters } from '../datacenters.js'
import { loseAndReturn, lossPhases, returnFigures, type LossPhases, type TracedReturn } from '../loss-and-return.js'
import type { Figure, Scenario } from '../scenario.js'
import { directionChanges, msOrNever } from '../split.js'
import { rotatedRounds } from '../stats.js'

// #25: the return after a datacenter failover. Under an open-loop load at a fixed rate, both dc1
// replicas are killed (SIGKILL; 2 more in dc2), the load runs on after Consul reports them critical,
// then they are started again. Read: the time from Consul reporting both dc1 replicas passing again to
// dc1 serving the majority of answers again, and the trace of where traffic went: the local level's
// share at each change of our watch's split, and the datacenter of each answer of the anchor, a prepared
// query with Failover.Datacenters [dc2] executed before every request. A failover and its return is
// one change of direction; more is oscillation.

const SIDES = OURS_AND_ANCHOR
type Side = typeof SIDES[number]
const NAMES = ANCHOR_NAMES
const REPLICAS = REPLICAS_PER_DC

interface Phases extends LossPhases { rate: number }

/** The trace: 1 while traffic is (all) local, 0 when it is all remote, at each change. */
interface ReturnRun extends TracedReturn {
  /** Ours: the dispatcher's retry and ejection counters after the run; empty for the anchor. */
  counters: string
}

/** A caller with its trace: our watch's local share, or the anchor's answers (1: dc1, 0: dc2). */
interface Traced extends Caller { trace: { values: number[], stop (): void } }

async function tracedCaller (dcs: Datacenters, query: PreparedQuery, side: Side): Promise<Traced> {
  if (side === 'ours') {
    const c = await oursWithFailover(dcs, REPLICAS)
    return { ...c, trace: splitTrace(c.dispatcher) }
  }
  const values: number[] = []
  let on = true
  const seen = (dc: string): void => {
    const v = dc === LOCAL ? 1 : 0
    if (on && v !== values[values.length - 1]) values.push(v)
  }
  return { ...preparedQueryCaller(dcs.local, query, seen), trace: { values, stop: () => { on = false } } }
}

async function returnRun (dcs: Datacenters, query: PreparedQuery, side: Side, p: Phases): Promise<ReturnRun> {
  const dc1 = await replicasIn(dcs.local, () => ({ group: LOCAL }), REPLICAS)
  const dc2 = await replicasIn(dcs.remote, () => ({ group: REMOTE }), REPLICAS)
  const c = await tracedCaller(dcs, query, side)
  const loop = c.load(p.rate)
  try {
    const run = await loseAndReturn(loop, p.rate, dcs.local, dc1, LOCAL, p)
    c.trace.stop()
    return { ...run, trace: c.trace.values, flips: directionChanges(c.trace.values), counters: c.counters?.() ?? '', loadavg: loadavg() }
  } finally {
    c.trace.stop()
    await loop.stop()
    await c.close()
    await dc1.stop()
    await dc2.stop()
  }
}

function figures (runs: Record<Side, ReturnRun[]>, p: Phases): Figure[] {
  const what = (s: string): string => `${s}, both dc1 replicas killed (SIGKILL; 2 more in dc2) and started again, ${p.rate} req/s offered`
  return returnFigures('P21', {
    time: what('Consul reports both dc1 replicas passing → dc1 serves the majority of answers again (ms)'),
    flips: what('changes of direction of where traffic went (a failover and its return is 1)')
  }, p.back, runs.ours, runs['prepared-query'], 'prepared-query', NAMES['prepared-query'])
}

export const p21: Scenario = {
  id: 'P21',
  title: 'every dc1 replica killed and started again under a fixed-rate load: the return to dc1 (ours, a prepared query)',
  async run (ctx) {
    const p: Phases = lossPhases(ctx)
    const dcs = await startDatacenters()
    try {
      const query = await createPreparedQuery(dcs.local.url, 'p21-user-service', 'user-service', [REMOTE])
      // Fresh replicas every run, the sides' order rotated each round so that none always runs first.
      const runs = await rotatedRounds(ctx.rounds, SIDES, async (side) => await returnRun(dcs, query, side, p), (round, side, r) => {
        ctx.log(`P21 round ${round + 1} ${side}: dc1 served by ${r.served} replicas; kill → Consul reports dc1 critical ${r.criticalMs.toFixed(0)} ms; from the kill to the end ${r.window.failed} failed of ${r.window.sent} (${r.failedBack} after dc1's return); Consul reports dc1 back → its majority ${msOrNever(r.returnMs)}, its share ${r.homeShare.toFixed(3)}; trace ${r.trace.map((x) => x.toFixed(2)).join(' → ')} (${r.flips} changes of direction); ${r.counters === '' ? '' : `${r.counters}; `}load ${r.loadavg[0]!.toFixed(2)}`)
      })
      return figures(runs, p)
    } finally {
      await dcs.fed.stop()
    }
  }
}
