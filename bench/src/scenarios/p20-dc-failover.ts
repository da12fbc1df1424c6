import { loadavg } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { createPreparedQuery, type PreparedQuery } from '../consul-lookups.js'
import { dnsCaller, GATEWAY_DISCOVERY, killAll, LOCAL, ours, oursWithFailover, passingIn, PREPARED_QUERY_NAME, REPLICAS_PER_DC, preparedQueryCaller, REMOTE, replicasIn, reported, servedBy, startDatacenters, type Caller, type Datacenters } from '../datacenters.js'
import { failureFigure } from '../failures.js'
import { windowStats, type WindowStats } from '../open-loop.js'
import { sized, type Figure, type Scenario, type Window } from '../scenario.js'
import { firstAnswer, majorityAfter, msOrNever } from '../split.js'
import { rotatedRounds, summarize, verdict } from '../stats.js'

// #25: a whole datacenter's replicas die at once (kill -9 of both dc1 replicas, 2 more in dc2) under
// an open-loop load at a fixed rate. Our dispatcher as the sample gateway runs it, with
// `failover: { datacenters: ['dc2'] }`; the same without failover (the negative control: nothing else
// has the service, so it must fail requests, or the drill did not bite); and Consul's own failover, a
// prepared query asked before every request over HTTP and over DNS (the anchors). Consul reports a
// killed replica critical at its next HTTP check, up to 10 s later (user-service registers the plugin's
// default check, every 10 s); until then every caller that follows Consul still sees dc1.
// Our dispatcher in the bench process rather than the gateway's process: the gateway routes through
// this same dispatcher with these options (apps/gateway DEFAULTS.discovery, REG_FAILOVER → failover),
// and in-process its watch's split and retry counters can be read at the moment they change.

const SIDES = ['ours', 'no-failover', 'prepared-query', 'dns'] as const
type Side = typeof SIDES[number]

const NAMES: Record<Side, string> = {
  ours: 'ours',
  'no-failover': 'negative control: the same dispatcher without failover',
  'prepared-query': PREPARED_QUERY_NAME,
  dns: 'the same prepared query resolved through Consul DNS (SRV, TTL 0) before every request'
}

const REPLICAS = REPLICAS_PER_DC

export interface Phases {
  rate: number
  warmup: number
  /** Each of the two windows with nothing changed before the kill (the A/A null control). */
  control: number
  /** Seconds the window runs on after Consul reported dc1 critical. */
  after: number
}

interface FailoverRun {
  control: [WindowStats, WindowStats]
  /** Requests due from the kill until `after` s past Consul's report. */
  window: WindowStats
  /** Kill → Consul reports no dc1 instance passing (ms). */
  criticalMs: number
  /** Consul's report → the first answer from dc2 (ms, signed; the window's rest when there was none). */
  firstRemoteMs: number
  remoteServed: boolean
  /** Consul's report → dc2 serves the majority (ms, signed); undefined when it never did. */
  majorityMs: number | undefined
  /** Distinct dc1 replicas that answered before the kill: every replica was really served. */
  served: number
  /** Ours: the dispatcher's retry and ejection counters after the run; empty for the anchors. */
  counters: string
  loadavg: number[]
}

/** A majority over this many answers (a fifth of a second of the load): one lucky pick is no majority. */
const runOf = (rate: number): number => Math.max(5, Math.round(rate / 5))

/** One run: fresh replicas in both datacenters, the side's caller, the load, the kill, Consul's report. */
export async function failoverRun (dcs: Datacenters, caller: () => Promise<Caller>, p: Phases): Promise<FailoverRun> {
  const dc1 = await replicasIn(dcs.local, () => ({ group: LOCAL }), REPLICAS)
  const dc2 = await replicasIn(dcs.remote, () => ({ group: REMOTE }), REPLICAS)
  const c = await caller()
  const loop = c.load(p.rate)
  try {
    const a = p.warmup * 1000
    const b = a + p.control * 1000
    const kill = b + p.control * 1000
    await sleep(kill - loop.now())
    // Parked before the kill, so it answers at Consul's report and not a poll later.
    const critical = reported(dcs.local, (passing) => passingIn(LOCAL, passing) === 0, loop.now)
    await killAll(dc1)
    const criticalAt = await critical
    const end = criticalAt + p.after * 1000
    await sleep(end - loop.now())
    const samples = await loop.stop()
    const first = firstAnswer(samples, servedBy(REMOTE), kill, criticalAt)
    const majority = majorityAfter(samples, servedBy(REMOTE), kill, runOf(p.rate))
    return {
      control: [windowStats(samples, a, b), windowStats(samples, b, kill)],
      window: windowStats(samples, kill, end),
      criticalMs: criticalAt - kill,
      firstRemoteMs: first ?? end - criticalAt,
      remoteServed: first !== undefined,
      majorityMs: majority === undefined ? undefined : kill + majority - criticalAt,
      served: new Set(samples.filter((s) => s.ok && s.due < kill && servedBy(LOCAL)(s)).map((s) => s.instance)).size,
      counters: c.counters?.() ?? '',
      loadavg: loadavg()
    }
  } finally {
    await loop.stop()
    await c.close()
    await dc1.stop()
    await dc2.stop()
  }
}

function figures (runs: Record<Side, FailoverRun[]>, p: Phases): Figure[] {
  const what = (s: string): string => `${s}, kill -9 of both dc1 replicas (2 more in dc2), ${p.rate} req/s offered`
  const windows = (pick: (r: FailoverRun) => number, sides: readonly Side[]): Window[] => sides.flatMap((side) => runs[side].map((r, round) => ({ side, round, value: pick(r), loadavg: r.loadavg })))
  const counts = (side: Side) => runs[side].map((r) => ({ ok: r.window.sent - r.window.failed, non2xx: r.window.failed, errors: 0, loadavg: r.loadavg }))
  const out: Figure[] = []
  for (const peer of ['no-failover', 'prepared-query', 'dns'] as const) {
    out.push(failureFigure({
      id: 'P20',
      what: what(`failed GETs from the kill to ${p.after} s after Consul reported dc1 critical`),
      baselineName: NAMES[peer],
      target: 'ours 0',
      ours: counts('ours'),
      baseline: counts(peer)
    }))
  }
  const first = runs.ours.map((r) => r.firstRemoteMs)
  for (const peer of ['prepared-query', 'dns'] as const) {
    out.push({
      id: 'P20',
      what: what('Consul reports dc1 critical → first answer from dc2 (ms, signed: negative when dc2 served before Consul noticed)'),
      unit: 'ms',
      ours: summarize(first),
      baseline: summarize(runs[peer].map((r) => r.firstRemoteMs)),
      baselineName: NAMES[peer],
      // No ratio of signed times: -4,000 against 30 is no "factor".
      ratio: null,
      target: '≤ 100 ms every round',
      met: first.every((x) => x <= 100),
      windows: windows((r) => r.firstRemoteMs, ['ours', peer])
    })
  }
  // Delivered within the window ÷ offered, read against the null control: the same share in two windows
  // before the kill (second ÷ first), from every side's runs.
  const kept = runs.ours.map((r) => r.window.delivered)
  const keptPeer = runs['no-failover'].map((r) => r.window.delivered)
  const aa = SIDES.flatMap((s) => runs[s].map((r) => r.control[1].delivered / r.control[0].delivered))
  const v = verdict(kept, 0.95, aa)
  out.push({
    id: 'P20',
    what: what(`share of the offered requests answered from the kill to ${p.after} s after Consul's report`),
    unit: 'of offered',
    ours: summarize(kept),
    baseline: summarize(keptPeer),
    baselineName: NAMES['no-failover'],
    /* c8 ignore next -- whether the control delivered anything at all in a smoke window is timing */
    ratio: summarize(keptPeer).median > 0 ? summarize(kept).median / summarize(keptPeer).median : null,
    target: '≥ 0.95 of offered',
    met: v.met,
    verdict: v.text,
    aa: summarize(aa),
    windows: [
      ...windows((r) => r.control[0].delivered, SIDES).map((w) => ({ ...w, side: `${w.side} control 1` })),
      ...windows((r) => r.control[1].delivered, SIDES).map((w) => ({ ...w, side: `${w.side} control 2` })),
      ...windows((r) => r.window.delivered, ['ours', 'no-failover']).map((w) => ({ ...w, side: `${w.side} after the kill` }))
    ]
  })
  return out
}

/** The sides' callers, on one federation; the prepared query is created once and shared by both anchors. */
function callers (dcs: Datacenters, query: PreparedQuery): Record<Side, () => Promise<Caller>> {
  return {
    ours: async () => await oursWithFailover(dcs, REPLICAS),
    'no-failover': async () => await ours(dcs.local, GATEWAY_DISCOVERY),
    'prepared-query': async () => preparedQueryCaller(dcs.local, query),
    dns: async () => dnsCaller(dcs.dnsPort, query)
  }
}

export const p20: Scenario = {
  id: 'P20',
  title: 'every dc1 replica killed under a fixed-rate load: failover to dc2 (ours, without failover, a prepared query over HTTP and DNS)',
  async run (ctx) {
    const p: Phases = {
      rate: Number(process.env.BENCH_RATE ?? sized(ctx, 50, 100)),
      warmup: sized(ctx, 1, 2),
      control: sized(ctx, 1, 3),
      after: sized(ctx, 1, 3)
    }
    const dcs = await startDatacenters()
    try {
      const query = await createPreparedQuery(dcs.local.url, 'p20-user-service', 'user-service', [REMOTE])
      const byside = callers(dcs, query)
      // Fresh replicas every run, the sides' order rotated each round so that none always runs first.
      const runs = await rotatedRounds(ctx.rounds, SIDES, async (side) => await failoverRun(dcs, byside[side], p), (round, side, r) => {
        const w = r.window
        ctx.log(`P20 round ${round + 1} ${side}: dc1 served by ${r.served} replicas; control delivered ${r.control.map((c) => c.delivered.toFixed(3)).join(', ')}; kill → Consul reports dc1 critical ${r.criticalMs.toFixed(0)} ms; from the kill to ${p.after} s after: ${w.failed} failed of ${w.sent}, delivered ${w.delivered.toFixed(3)}, p99 ${w.p99.toFixed(0)} ms; Consul's report → first dc2 answer ${msOrNever(r.remoteServed ? r.firstRemoteMs : undefined)}, dc2 majority ${msOrNever(r.majorityMs)}; ${r.counters === '' ? '' : `${r.counters}; `}load ${r.loadavg[0]!.toFixed(2)}`)
      })
      return figures(runs, p)
    } finally {
      await dcs.fed.stop()
    }
  }
}
