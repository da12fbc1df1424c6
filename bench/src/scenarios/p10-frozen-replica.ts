import { loadavg } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ConsulAgent } from '@reg/testkit'
import { failureFigure } from '../failures.js'
import { HAPROXY_NAME, OURS_STEADY, onFreshReplicas, servedReplicas, sideRounds, type Front } from '../fronts.js'
import { openLoop, windowStats, type WindowStats } from '../open-loop.js'
import { sized, type Figure, type Scenario, type Window } from '../scenario.js'
import { summarize, verdict } from '../stats.js'

// A replica that is up but never answers (SIGSTOP: a GC storm, a stuck disk, a debugger) is invisible
// to Consul for seconds and to a round-robin caller forever. Each run: 3 fresh replicas, one front (our
// gateway, HAProxy configured as a fair peer, the old round-robin gateway), and an open-loop load at a
// fixed rate below every front's capacity (DESIGN.md "Measuring"): a warm-up, two windows with nothing
// changed (the null control: the second ÷ the first), then replica 1 frozen for the freeze window.
// What a balancer controls here is the tail: requests stuck behind the frozen replica, not capacity (a
// frozen replica frees CPU on a 2-core box, which is why the old closed-loop "capacity kept" drifted).

/** The old gateway's discovery (before #13): round-robin, no per-try timeout, no retry on a status, no hedge (#23). */
export const OLD_GATEWAY = { balancer: 'round-robin', perTryTimeout: 0, retryOn: [], hedge: false }

const SIDES = ['ours', 'haproxy', 'round-robin'] as const
type Side = typeof SIDES[number]

export interface FrozenRun {
  /** The two windows with nothing changed, then the freeze. */
  control: [WindowStats, WindowStats]
  freeze: WindowStats
  /** Distinct replicas (x-instance-id) that answered before the load started: 3 when the front reaches all. */
  served: number
  loadavg: number[]
}

export interface Phases { rate: number, warmup: number, control: number, freeze: number }

export async function frozenRun (agent: ConsulAgent, front: () => Promise<Front>, p: Phases): Promise<FrozenRun & { config?: string }> {
  return await onFreshReplicas(agent, front, async (url, f, frozen) => {
    const served = await servedReplicas(url)
    const loop = openLoop(url, { rate: p.rate })
    const a = p.warmup * 1000
    const b = a + p.control * 1000
    const c = b + p.control * 1000
    const d = c + p.freeze * 1000
    await sleep(c - loop.now())
    frozen.kill('SIGSTOP')
    await sleep(d - loop.now())
    frozen.kill('SIGCONT')
    const samples = await loop.stop()
    return {
      control: [windowStats(samples, a, b), windowStats(samples, b, c)],
      freeze: windowStats(samples, c, d),
      served,
      loadavg: loadavg(),
      config: f.config
    }
  })
}

const NAMES: Record<Side, string> = {
  ours: 'ours',
  haproxy: HAPROXY_NAME,
  'round-robin': 'negative control: the old gateway, round-robin, no per-try timeout'
}

/** Figures from every run of every side: failures, stuck requests, p50/p99/max, and delivery with its null control. */
function figures (runs: Record<Side, FrozenRun[]>, p: Phases, config: string | undefined): Figure[] {
  const what = (s: string): string => `${s} while 1 of 3 replicas is frozen ${p.freeze} s, ${p.rate} req/s offered`
  const windows = (pick: (r: FrozenRun) => number, sides: Side[]): Window[] => sides.flatMap((side) => runs[side].map((r, round) => ({ side, round, value: pick(r), loadavg: r.loadavg })))
  const stat = (side: Side, pick: (w: WindowStats) => number): number[] => runs[side].map((r) => pick(r.freeze))
  const out: Figure[] = []
  for (const peer of ['haproxy', 'round-robin'] as const) {
    const extra = peer === 'haproxy' ? { config } : {}
    out.push({
      ...failureFigure({
        id: 'P10',
        what: what('failed requests'),
        baselineName: NAMES[peer],
        target: 'ours 0',
        ours: runs.ours.map((r) => ({ ok: r.freeze.sent - r.freeze.failed, non2xx: r.freeze.failed, errors: 0 })),
        baseline: runs[peer].map((r) => ({ ok: r.freeze.sent - r.freeze.failed, non2xx: r.freeze.failed, errors: 0 }))
      }),
      windows: windows((r) => r.freeze.failed, ['ours', peer]),
      ...extra
    })
    const slowOurs = stat('ours', (w) => w.slow)
    const slowPeer = stat(peer, (w) => w.slow)
    out.push({
      id: 'P10',
      what: what('requests slower than 1 s'),
      unit: 'slow',
      ours: summarize(slowOurs),
      baseline: summarize(slowPeer),
      baselineName: NAMES[peer],
      ratio: null,
      target: 'fewer than the peer in every round',
      met: slowOurs.every((n, i) => n < slowPeer[i]!),
      windows: windows((r) => r.freeze.slow, ['ours', peer]),
      ...extra
    })
    // Delivered within the freeze ÷ offered, read against the null control: the same share from two
    // windows with nothing frozen (second ÷ first), for both sides.
    const kept = runs.ours.map((r) => r.freeze.delivered)
    const aa = (['ours', peer] as const).flatMap((s) => runs[s].map((r) => r.control[1].delivered / r.control[0].delivered))
    const v = verdict(kept, 0.95, aa)
    const keptPeer = runs[peer].map((r) => r.freeze.delivered)
    out.push({
      id: 'P10',
      what: what('share of the offered requests answered within the freeze'),
      unit: 'of offered',
      ours: summarize(kept),
      baseline: summarize(keptPeer),
      baselineName: NAMES[peer],
      /* c8 ignore next -- whether the round-robin side delivered anything within a 2 s smoke freeze is timing */
      ratio: summarize(keptPeer).median > 0 ? summarize(kept).median / summarize(keptPeer).median : null,
      target: '≥ 0.95 of offered',
      met: v.met,
      verdict: v.text,
      aa: summarize(aa),
      windows: [
        ...windows((r) => r.control[0].delivered, ['ours', peer]).map((w) => ({ ...w, side: `${w.side} control 1` })),
        ...windows((r) => r.control[1].delivered, ['ours', peer]).map((w) => ({ ...w, side: `${w.side} control 2` })),
        ...windows((r) => r.freeze.delivered, ['ours', peer]).map((w) => ({ ...w, side: `${w.side} freeze` }))
      ],
      ...extra
    })
  }
  // The tail against both: the round-robin side's requests on the frozen replica wait for all of the
  // freeze (its max is about the freeze's length), which is how the smoke test knows the control failed.
  for (const peer of ['haproxy', 'round-robin'] as const) {
    for (const [name, pick] of [['p50', (w: WindowStats) => w.p50], ['p99', (w: WindowStats) => w.p99], ['max', (w: WindowStats) => w.max]] as const) {
      const o = summarize(stat('ours', pick))
      const b = summarize(stat(peer, pick))
      out.push({
        id: 'P10',
        what: what(`${name} latency`),
        unit: 'ms',
        ours: o,
        baseline: b,
        baselineName: NAMES[peer],
        ratio: b.median / o.median,
        target: '–',
        met: undefined,
        windows: windows((r) => pick(r.freeze), ['ours', peer]),
        ...(peer === 'haproxy' ? { config } : {})
      })
    }
  }
  return out
}

export const p10: Scenario = {
  id: 'P10',
  title: 'one of 3 replicas frozen (SIGSTOP) under a fixed-rate load: ours, HAProxy as a fair peer, the old round-robin',
  async run (ctx) {
    const p: Phases = {
      rate: Number(process.env.BENCH_RATE ?? sized(ctx, 50, 100)),
      warmup: sized(ctx, 1, 2),
      control: sized(ctx, 1, 3),
      freeze: sized(ctx, 4, 8)
    }
    // Each round on fresh replicas, the sides' order rotated so that none always runs first.
    const runs = await sideRounds(ctx, SIDES, ({ gateway, haproxy }) => ({ ours: gateway(OURS_STEADY), haproxy, 'round-robin': gateway(OLD_GATEWAY) }), async (agent, front) => await frozenRun(agent, front, p), (round, side, run) => {
      const w = run.freeze
      ctx.log(`P10 round ${round + 1} ${side}: served by ${run.served} replicas; control delivered ${run.control.map((c) => c.delivered.toFixed(3)).join(', ')}; freeze: ${w.failed} failed, ${w.slow} > 1 s of ${w.sent}, delivered ${w.delivered.toFixed(3)}, p50 ${w.p50.toFixed(1)} ms, p99 ${w.p99.toFixed(0)} ms, max ${w.max.toFixed(0)} ms; load ${run.loadavg[0]!.toFixed(2)}`)
    })
    return figures(runs, p, runs.haproxy[0]!.config)
  }
}
