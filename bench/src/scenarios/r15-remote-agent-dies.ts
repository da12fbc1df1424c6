import { loadavg } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { createPreparedQuery } from '../consul-lookups.js'
import { killAll, levelOf, LOCAL, oursWithFailover, pollUntil, passingIn, ANCHOR_NAMES, OURS_AND_ANCHOR, REPLICAS_PER_DC, preparedQueryCaller, REMOTE, replicasIn, reported, servedBy, startDatacenters, type Caller } from '../datacenters.js'
import { failureFigure } from '../failures.js'
import { windowStats, type OpenLoop, type WindowStats } from '../open-loop.js'
import { sized, type Figure, type Scenario } from '../scenario.js'
import { shareOf } from '../split.js'
import { rotatedRounds } from '../stats.js'

// #25: a remote datacenter's agent dies. Two datacenters, 2 user-service replicas each; the caller in
// dc1 fails over to dc2. Under an open-loop load at a fixed rate, dc2's agent (its only server) is
// killed (SIGKILL): dc2's replicas run on, but nothing can read dc2 any more. Read, in the `after` s
// that follow: failed requests (local routing must be untouched: 0) and where they were served; for
// ours, when its dc2 level turned `stale` and how many dc2 instances it kept. Then every dc1 replica is
// killed too: a caller that kept dc2's last instances (fail static) still serves from them, one that
// needs dc2 readable cannot. The anchor is a prepared query with Failover.Datacenters [dc2], executed
// before every request: with dc2 unreadable its failover has nowhere to go, which makes it the
// negative control of the second phase (it must lose requests, or the drill did not bite).
// A fresh federation each run: the killed agent is not started again.

const SIDES = OURS_AND_ANCHOR
type Side = typeof SIDES[number]
const NAMES = ANCHOR_NAMES
const REPLICAS = REPLICAS_PER_DC

interface Phases {
  rate: number
  warmup: number
  /** Seconds after dc2's agent was killed (and, for ours, its level was marked stale) before dc1 is lost too. */
  after: number
  /** Seconds the load runs on after Consul reported dc1 critical. */
  lost: number
}

interface RemoteRun {
  /** Requests due from dc2's agent kill until dc1's replicas are killed. */
  remoteDead: WindowStats
  /** Of those answered, the share served by dc1. */
  localShare: number
  /** Ours: dc2's agent killed → its level marked stale (ms), and the dc2 instances it still holds. */
  staleMs: number | undefined
  kept: number | undefined
  /** Requests due from dc1's kill to `lost` s after Consul reported it critical. */
  allLost: WindowStats
  /** Of those answered, the share served by dc2's (unreadable) replicas. */
  remoteShare: number
  /** Ours: the dispatcher's retry and ejection counters after the run; empty for the anchor. */
  counters: string
  loadavg: number[]
}

async function remoteRun (side: Side, p: Phases): Promise<RemoteRun> {
  const dcs = await startDatacenters()
  try {
    const dc1 = await replicasIn(dcs.local, () => ({ group: LOCAL }), REPLICAS)
    const dc2 = await replicasIn(dcs.remote, () => ({ group: REMOTE }), REPLICAS)
    let c: Caller | undefined
    let loop: OpenLoop | undefined
    try {
      const query = await createPreparedQuery(dcs.local.url, 'r15-user-service', 'user-service', [REMOTE])
      const o = side === 'ours' ? await oursWithFailover(dcs, REPLICAS) : undefined
      c = o ?? preparedQueryCaller(dcs.local, query)
      loop = c.load(p.rate)
      await sleep(p.warmup * 1000 - loop.now())
      // The moment of the kill as the load's clock saw it, as for dc1's below.
      const dead = loop.now()
      await dcs.remote.kill()
      let staleMs: number | undefined
      if (o !== undefined) {
        await pollUntil(() => o.dispatcher.watch.priorities, (levels) => levels.some((l) => l.datacenter === REMOTE && l.state === 'stale'), `${REMOTE}'s level stale`)
        staleMs = loop.now() - dead
      }
      await sleep(p.after * 1000)
      // The level is there: it was just seen stale.
      const kept = o === undefined ? undefined : levelOf(o.dispatcher, REMOTE)!.routable
      const critical = reported(dcs.local, (passing) => passingIn(LOCAL, passing) === 0, loop.now)
      // The moment of the kill as the load's clock saw it: the phases are split here, not where it was planned.
      const kill = loop.now()
      await killAll(dc1)
      const criticalAt = await critical
      const end = criticalAt + p.lost * 1000
      await sleep(end - loop.now())
      const samples = await loop.stop()
      // Answers that ended within the phase: one due just before dc1's kill and retried on dc2 after it is the second phase's.
      const answered = (from: number, to: number) => samples.filter((s) => s.ok && s.due >= from && s.done < to)
      return {
        remoteDead: windowStats(samples, dead, kill),
        localShare: shareOf(answered(dead, kill), servedBy(LOCAL)),
        staleMs,
        kept,
        allLost: windowStats(samples, kill, end),
        remoteShare: shareOf(answered(kill, end), servedBy(REMOTE)),
        counters: c.counters?.() ?? '',
        loadavg: loadavg()
      }
    } finally {
      await loop?.stop()
      await c?.close()
      // Their agents are gone (dc2's) or about to be: no deregistration, the processes only.
      await killAll(dc1)
      await killAll(dc2)
    }
  } finally {
    await dcs.fed.stop()
  }
}

function figures (runs: Record<Side, RemoteRun[]>, p: Phases): Figure[] {
  const what = (s: string): string => `${s}, 2 replicas in each of dc1 and dc2, ${p.rate} req/s offered`
  const counts = (side: Side, w: (r: RemoteRun) => WindowStats) => runs[side].map((r) => ({ ok: w(r).sent - w(r).failed, non2xx: w(r).failed, errors: 0, loadavg: r.loadavg }))
  return [
    failureFigure({
      id: 'R15',
      what: what(`failed GETs from dc2's agent SIGKILLed to ${p.after} s after (ours: after its dc2 level was marked stale)`),
      baselineName: NAMES['prepared-query'],
      target: 'ours 0',
      ours: counts('ours', (r) => r.remoteDead),
      baseline: counts('prepared-query', (r) => r.remoteDead)
    }),
    failureFigure({
      id: 'R15',
      what: what(`then every dc1 replica SIGKILLed too: failed GETs to ${p.lost} s after Consul reported dc1 critical (served by dc2's last known instances)`),
      baselineName: `negative control: ${NAMES['prepared-query']}`,
      target: 'ours 0',
      ours: counts('ours', (r) => r.allLost),
      baseline: counts('prepared-query', (r) => r.allLost)
    })
  ]
}

export const r15: Scenario = {
  id: 'R15',
  title: 'a remote datacenter\'s agent dies under a fixed-rate load: local routing untouched, its last instances kept and marked stale (ours, a prepared query)',
  async run (ctx) {
    const p: Phases = {
      rate: Number(process.env.BENCH_RATE ?? sized(ctx, 50, 100)),
      warmup: sized(ctx, 1, 2),
      after: sized(ctx, 1, 3),
      lost: sized(ctx, 1, 3)
    }
    // A fresh federation every run, the sides' order rotated each round so that none always runs first.
    const runs = await rotatedRounds(ctx.rounds, SIDES, async (side) => await remoteRun(side, p), (round, side, r) => {
      const stale = r.staleMs === undefined ? '' : `dc2 level stale ${r.staleMs.toFixed(0)} ms after, ${r.kept} dc2 instances kept; `
      ctx.log(`R15 round ${round + 1} ${side}: dc2's agent killed: ${stale}${r.remoteDead.failed} failed of ${r.remoteDead.sent}, dc1's share ${r.localShare.toFixed(3)}; dc1 lost too: ${r.allLost.failed} failed of ${r.allLost.sent}, dc2's share ${r.remoteShare.toFixed(3)}; ${r.counters === '' ? '' : `${r.counters}; `}load ${r.loadavg[0]!.toFixed(2)}`)
    })
    return figures(runs, p)
  }
}
