import { ensureHaproxy, freePorts, startConsul, type ConsulAgent } from '@reg/testkit'
import { startChildServer } from '../child-server.js'
import { startHaproxy } from '../haproxy.js'
import { load } from '../load.js'
import { startReplicas, USER_SERVICE } from '../replicas.js'
import { sized, type Figure, type LoadTally, type Scenario } from '../scenario.js'
import { summarize } from '../stats.js'

// A replica that is up but never answers (SIGSTOP: a GC storm, a stuck disk, a debugger) is invisible
// to Consul for seconds and to a round-robin caller forever: every connection ends up waiting on it.
// Each run: 3 fresh replicas, one front (our gateway, the old gateway, HAProxy), req/s before the
// freeze, then req/s while replica 1 is frozen; the figure is the share of req/s kept.

/** What a front kept: req/s during the freeze ÷ req/s before, and what its loads saw. */
interface Kept { kept: number, loads: LoadTally }

interface Front { url: string, stop (): Promise<void> }

/** The old gateway's discovery (before #13): round-robin, no per-try timeout, no retry on a status. */
export const OLD_GATEWAY = { balancer: 'round-robin', perTryTimeout: 0, retryOn: [] }

async function frozenRun (agent: ConsulAgent, front: () => Promise<Front>, warmup: number, before: number, freeze: number): Promise<Kept> {
  const set = await startReplicas(agent, USER_SERVICE, 3)
  const f = await front()
  const frozen = set.replicas[1]!.child
  try {
    const url = `${f.url}/users`
    // Fresh processes: JIT and connection pools first, or "before" is low and any freeze looks free.
    await load(url, warmup)
    const a = await load(url, before)
    frozen.kill('SIGSTOP')
    const b = await load(url, freeze)
    frozen.kill('SIGCONT')
    return { kept: b.requestsPerSecond / a.requestsPerSecond, loads: { requests: a.total + b.total, non2xx: a.non2xx + b.non2xx, errors: a.errors + b.errors } }
  } finally {
    frozen.kill('SIGCONT')
    await f.stop()
    await set.stop()
  }
}

const tally = (runs: Kept[]): LoadTally => ({
  requests: runs.reduce((n, r) => n + r.loads.requests, 0),
  non2xx: runs.reduce((n, r) => n + r.loads.non2xx, 0),
  errors: runs.reduce((n, r) => n + r.loads.errors, 0)
})

function keptFigure (what: string, ours: Kept[], baseline: Kept[], baselineName: string): Figure {
  const o = summarize(ours.map((r) => r.kept))
  const b = summarize(baseline.map((r) => r.kept))
  // Our loads only: the baselines' timeouts are what they are measured for. Any failure of ours makes
  // the figure invalid, since a fast 504 would count as throughput.
  const loads = tally(ours)
  return {
    id: 'P10',
    what,
    unit: 'of before',
    ours: o,
    baseline: b,
    baselineName,
    // > 1: we keep more. None against a baseline that kept nothing (∞ says nothing).
    /* c8 ignore next -- whether the old gateway served anything at all while frozen is timing */
    ratio: b.median > 0 ? o.median / b.median : null,
    target: '≥ 0.95 of before',
    met: loads.non2xx + loads.errors === 0 && o.median >= 0.95,
    loads
  }
}

export const p10: Scenario = {
  id: 'P10',
  title: 'gateway req/s while 1 of 3 replicas is frozen (SIGSTOP) ÷ req/s before: ours, the old round-robin, HAProxy',
  async run (ctx) {
    const warmup = sized(ctx, 1, 3)
    const before = sized(ctx, 1, 5)
    const freeze = sized(ctx, 2, 8)
    const haproxyBin = await ensureHaproxy({ log: ctx.log })
    // Consul's DNS interface for HAProxy's SRV lookups; the testkit turns it off (-dns-port -1), and
    // Consul takes the last of a repeated flag.
    const [dnsPort] = await freePorts(1) as [number]
    const agent = await startConsul({ args: ['-dns-port', String(dnsPort)] })
    const env = { CONSUL_HTTP_ADDR: agent.address }
    const gateway = (discovery: object) => async (): Promise<Front> => startChildServer('gateway-server.js', { ...env, DISCOVERY: JSON.stringify(discovery) })
    const haproxy = async (): Promise<Front> => startHaproxy(haproxyBin, dnsPort, 'user-service', 3)
    const runs = { ours: [] as Kept[], old: [] as Kept[], haproxy: [] as Kept[] }
    try {
      // Interleaved rounds (ours, old, HAProxy, ours, …), each on fresh replicas.
      for (let i = 0; i < ctx.rounds; i++) {
        runs.ours.push(await frozenRun(agent, gateway({}), warmup, before, freeze))
        runs.old.push(await frozenRun(agent, gateway(OLD_GATEWAY), warmup, before, freeze))
        runs.haproxy.push(await frozenRun(agent, haproxy, warmup, before, freeze))
      }
      const line = (name: string, r: Kept[]): string => `${name} ${r.map((x) => x.kept.toFixed(2)).join('/')} (${tally(r).non2xx} non-2xx, ${tally(r).errors} errors)`
      ctx.log(`P10 kept while frozen: ${line('ours', runs.ours)}; ${line('round-robin', runs.old)}; ${line('HAProxy', runs.haproxy)}`)
      const what = `gateway req/s kept while 1 of 3 replicas is frozen ${freeze} s`
      return [
        keptFigure(what, runs.ours, runs.old, 'the old gateway: round-robin, no per-try timeout'),
        keptFigure(what, runs.ours, runs.haproxy, 'HAProxy 2.6: leastconn, httpchk /health every 1 s (fall 2), server-template over Consul DNS SRV')
      ]
    } finally {
      await agent.stop()
    }
  }
}
