import { loadavg } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ConsulAgent } from '@reg/testkit'
import { HAPROXY_NAME, OURS_STEADY, onFreshReplicas, servedReplicas, sideRounds, type Front } from '../fronts.js'
import { openLoop, windowStats } from '../open-loop.js'
import { firstServed, recovery, type Recovery } from '../recovery.js'
import { sized, type Figure, type Scenario, type Window } from '../scenario.js'
import { TAIL_SERVER } from '../replicas.js'
import { summarize } from '../stats.js'

// #30: a replica that stalled (SIGSTOP for 8 s under load) and recovered (SIGCONT): how soon does the
// front send it traffic again, and how much of it in the 10 s after? Ours (half-open readmission: a 1 s
// back-off, then one probe), HAProxy as a fair peer (fast active checks, rise 2), and ours with a 30 s
// back-off, Envoy's base_ejection_time and what our outlier detector used before #30.

/** Our dispatcher with the back-off it had before #30 (Envoy's default): out for 30 s × its ejections. */
export const ENVOY_BACKOFF = Object.freeze({ ...OURS_STEADY, ejectionMs: '30s' })

const SIDES = ['ours', 'haproxy', 'backoff-30s'] as const
type Side = typeof SIDES[number]

const NAMES: Record<Side, string> = {
  ours: 'ours',
  haproxy: HAPROXY_NAME,
  'backoff-30s': 'ours with a 30 s back-off (Envoy\'s base_ejection_time, as our detector had before #30)'
}

/** The replica frozen in every run: replicas[1], registered as user-service-1 (bench/src/replicas.ts). */
const FROZEN = 'user-service-1'

interface Phases { rate: number, warmup: number, freeze: number, after: number }

interface RecoveryRun extends Recovery {
  /** Failed requests due from the freeze to the end of the window. */
  failed: number
  sent: number
  loadavg: number[]
}

/**
 * The replicas: the tail server (user-service's shape) with Consul's HTTP check timeout (9 s) longer than
 * the freeze (8 s). With the default 5 s, a check that met the frozen replica timed out and left it
 * critical in Consul until the next check, up to 10 s after the thaw, in about half the rounds (seen by
 * polling the agent during P23): the figure then measured Consul's check phase, which every side that
 * follows Consul waits for, and not the front.
 */
const REPLICAS = { script: TAIL_SERVER, env: { CHECK_TIMEOUT: '9s' } }

async function recoveryRun (agent: ConsulAgent, front: () => Promise<Front>, p: Phases): Promise<RecoveryRun> {
  return await onFreshReplicas(agent, front, async (url, _f, frozen) => {
    await servedReplicas(url)
    const loop = openLoop(url, { rate: p.rate })
    const freeze = p.warmup * 1000
    await sleep(freeze - loop.now())
    frozen.kill('SIGSTOP')
    await sleep(freeze + p.freeze * 1000 - loop.now())
    frozen.kill('SIGCONT')
    // The thaw as the load's clock saw it, after the signal went.
    const thaw = loop.now()
    await sleep(thaw + p.after * 1000 - loop.now())
    const samples = await loop.stop()
    const all = windowStats(samples, freeze, thaw + p.after * 1000)
    return { ...recovery(samples, FROZEN, thaw, p.after * 1000), failed: all.failed, sent: all.sent, loadavg: loadavg() }
  }, REPLICAS)
}

function figures (runs: Record<Side, RecoveryRun[]>, p: Phases): Figure[] {
  const what = (s: string): string => `${s} after 1 of 3 replicas was frozen ${p.freeze} s, ${p.rate} req/s offered`
  const windows = (pick: (r: RecoveryRun) => number, peer: Side): Window[] => (['ours', peer] as const).flatMap((side) => runs[side].map((r, round) => ({ side, round, value: pick(r), loadavg: r.loadavg })))
  const out: Figure[] = []
  for (const peer of ['haproxy', 'backoff-30s'] as const) {
    const first = runs.ours.map((r) => r.firstMs)
    const firstPeer = runs[peer].map((r) => r.firstMs)
    out.push({
      id: 'P23',
      what: what('thaw → its first request served (ms)'),
      unit: 'ms',
      ours: summarize(first),
      baseline: summarize(firstPeer),
      baselineName: NAMES[peer],
      // Lower is better: the peer's time ÷ ours. A replica never served in the window counts as the window.
      ratio: summarize(firstPeer).median / Math.max(1, summarize(first).median),
      target: '≤ 2,000 ms every round',
      // A replica never served counts as the whole window, longer than 2 s in every size of run.
      met: runs.ours.every((r) => r.firstMs <= 2000),
      windows: windows((r) => r.firstMs, peer)
    })
    const share = runs.ours.map((r) => r.share)
    const sharePeer = runs[peer].map((r) => r.share)
    out.push({
      id: 'P23',
      what: what(`its share of the answers in the ${p.after} s after the thaw`),
      unit: 'of answers',
      ours: summarize(share),
      baseline: summarize(sharePeer),
      baselineName: NAMES[peer],
      /* c8 ignore next -- whether a peer's thawed replica served anything within a smoke round's short window is timing */
      ratio: summarize(sharePeer).median > 0 ? summarize(share).median / summarize(sharePeer).median : null,
      target: '≥ 0.25 every round (a third is fair)',
      met: share.every((s) => s >= 0.25),
      windows: windows((r) => r.share, peer)
    })
  }
  const failed = runs.ours.map((r) => r.failed)
  out.push({
    id: 'P23',
    what: what('failed requests from the freeze to the end'),
    unit: 'failed',
    ours: summarize(failed),
    baseline: summarize(runs.haproxy.map((r) => r.failed)),
    baselineName: NAMES.haproxy,
    ratio: null,
    target: 'ours 0',
    met: failed.every((n) => n === 0),
    requests: { ours: summarize(runs.ours.map((r) => r.sent)), baseline: summarize(runs.haproxy.map((r) => r.sent)) },
    windows: windows((r) => r.failed, 'haproxy')
  })
  return out
}

export const p23: Scenario = {
  id: 'P23',
  title: 'a replica frozen 8 s then thawed: how soon it gets traffic back, and its share (ours, HAProxy, a 30 s back-off)',
  async run (ctx) {
    const p: Phases = {
      rate: Number(process.env.BENCH_RATE ?? sized(ctx, 50, 100)),
      warmup: sized(ctx, 1, 2),
      freeze: sized(ctx, 3, 8),
      after: sized(ctx, 3, 10)
    }
    const runs = await sideRounds(ctx, SIDES, ({ gateway, haproxy }) => ({ ours: gateway(OURS_STEADY), haproxy, 'backoff-30s': gateway(ENVOY_BACKOFF) }), async (agent, front) => await recoveryRun(agent, front, p), (round, side, run) => {
      ctx.log(`P23 round ${round + 1} ${side}: first request ${firstServed(run)} after the thaw, share ${(100 * run.share).toFixed(1)} % in ${p.after} s; ${run.failed} failed of ${run.sent}; load ${run.loadavg[0]!.toFixed(2)}`)
    })
    return figures(runs, p)
  }
}
