import { spawn } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import { loadavg } from 'node:os'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { ensureConsul, startConsul, type ConsulAgent } from '@reg/testkit'
import { leadership, twoLeaderInstants, type LeaderReport } from '../leader-intervals.js'
import { sized, type Figure, type Scenario, type Window } from '../scenario.js'
import { monotonicMs } from '../servers/kv-clock.js'
import { rotation, summarize } from '../stats.js'

// #28's R19: leader handover on SIGTERM ≤ 1 s; on kill -9 at most 2 × TTL + lock delay (Consul 1.8.7 keeps a
// session up to 2 × TTL after its last renewal); never two leaders. Ours: 3 processes with the plugin's
// `leader()` on one key. The peer: Consul's own Go api.Lock as its users run it, 3 × `consul lock <prefix>
// <child>` on one prefix. Every instant is CLOCK_MONOTONIC, read by the process that saw it.

const SIDES = ['ours', 'peer'] as const
type Side = typeof SIDES[number]

/** `consul lock` has no flags for them: api.Lock's session TTL, and Consul's default lock delay. */
const PEER = { ttl: 15, lockDelay: 15 }

interface Contender {
  pid: number
  reports: LeaderReport[]
  /** Emits 'report' at each line the process prints. */
  lines: EventEmitter
  exited: Promise<unknown>
  /** Its pipes closed: every line it printed has been read. */
  closed: Promise<unknown>
  alive: boolean
  /** Closes our ends of its pipes: a descendant that outlives it must not keep this process running. */
  detach: () => void
}

/** Every contender started and not yet stopped, its group killed when this process exits (a timed-out test included). */
const spawned = new Set<Contender>()
process.on('exit', () => {
  /* c8 ignore next -- has work only when the process ends before the run's cleanup (a timed-out test) */
  for (const c of spawned) killGroup(c, 'SIGKILL')
})

/** Sends `sig` to a process (or to a group, with a negative id) that may be gone already. */
function signal (pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {
    // Gone already: the kill -9's group, a leader stopped, a group with nobody left.
  }
}

const killGroup = (c: Contender, sig: NodeJS.Signals): void => { signal(-c.pid, sig) }

/**
 * One contender, in a process group of its own: a kill -9 of the group kills `consul lock` and its child
 * together. Its stderr is piped, not inherited: a process left behind must hold no pipe of the test run.
 */
function contender (command: string, args: string[], env: Record<string, string>): Contender {
  const child = spawn(command, args, { detached: true, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  child.stderr.pipe(process.stderr, { end: false })
  const c: Contender = {
    pid: child.pid!,
    reports: [],
    lines: new EventEmitter(),
    exited: once(child, 'exit'),
    closed: once(child, 'close'),
    alive: true,
    detach: () => {
      child.stdout.destroy()
      child.stderr.destroy()
    }
  }
  spawned.add(c)
  child.once('exit', () => { c.alive = false })
  createInterface({ input: child.stdout }).on('line', (line) => {
    c.reports.push(JSON.parse(line) as LeaderReport)
    c.lines.emit('report')
  })
  return c
}

/** Its last word was "elected", and it runs: a process that exited cannot be the one to stop. */
const leading = (c: Contender): boolean => c.alive && c.reports.at(-1)?.event === 'elected'

/** The leader of `s`, or an error naming the side: the run fails, it does not hang or kill a stale pid. */
function leaderOf (s: SideRun): Contender {
  const leader = s.contenders.find(leading)
  /* c8 ignore next -- a side with no running leader after an election fails the run loudly */
  if (leader === undefined) throw new Error(`R19 ${s.side}: no running contender leads`)
  return leader
}

/** The first contender of `cs` that reports 'elected' after the instant `after`, and when. */
async function electedAfter (cs: readonly Contender[], after: number, timeoutMs: number): Promise<{ c: Contender, at: number }> {
  return await new Promise((resolve, reject) => {
    const check = (): void => {
      for (const c of cs) {
        const r = c.reports.find((r) => r.event === 'elected' && r.at > after)
        if (r === undefined) continue
        clearTimeout(timer)
        for (const d of cs) d.lines.off('report', check)
        resolve({ c, at: r.at })
        return
      }
    }
    /* c8 ignore next -- a side that never elects another leader fails the run, loudly, instead of hanging */
    const timer = setTimeout(() => { reject(new Error(`R19: no contender elected within ${timeoutMs} ms`)) }, timeoutMs)
    for (const c of cs) c.lines.on('report', check)
    check()
  })
}

interface Config { ttl: number, lockDelay: number }

interface SideRun {
  side: Side
  contenders: Contender[]
  config: Config
  /** How long an election may take before the run fails: the kill -9 bound, and some. */
  timeoutMs: number
}

async function startSide (side: Side, agent: ConsulAgent, consul: string, ours: Config, round: number): Promise<SideRun> {
  const dist = (file: string): string => fileURLToPath(new URL(`../../dist/servers/${file}`, import.meta.url))
  const config = side === 'ours' ? ours : PEER
  // A key per round and side: no lock delay of a round reaches the next.
  const key = `r19/${side}/${round}`
  const contenders = [0, 1, 2].map(() => side === 'ours'
    ? contender(process.execPath, [dist('leader-contender.js')], { CONSUL_HTTP_ADDR: agent.address, LEADER_KEY: key, LEADER_TTL: `${config.ttl}s`, LEADER_LOCK_DELAY: `${config.lockDelay}s` })
    // `consul lock` runs its command with `$SHELL -c` (or /bin/sh): `exec`, as a careful user writes it,
    // makes the child the process `consul lock` signals. Without it, dash (Debian's /bin/sh) forks, the
    // SIGTERM stops the shell only, and the job runs on without the lock (a CI run with no $SHELL met it).
    // SHELL is fixed, so every machine runs the same process tree.
    : contender(consul, ['lock', '-http-addr', agent.address, '-name', key, key, 'exec', process.execPath, dist('lock-child.js')], { SHELL: '/bin/sh' }))
  const s = { side, contenders, config, timeoutMs: (2 * config.ttl + config.lockDelay + 30) * 1000 }
  await electedAfter(contenders, -Infinity, s.timeoutMs)
  // The two followers must be waiting on the key (their sessions made, their blocking queries parked)
  // before the leader goes, or the handover times their start-up.
  await sleep(2000)
  return s
}

/**
 * SIGTERM to `c`, then SIGKILL to its group if it still runs after `graceMs` (`consul lock` gives its child
 * 5 s), and in every case to what is left of its group; then our ends of its pipes are closed. A child
 * left running is killed, never waited for: it has said no "lost", so its overlap is still counted.
 */
async function stop (c: Contender, graceMs = 15_000): Promise<void> {
  if (c.alive) {
    signal(c.pid, 'SIGTERM')
    const timer = setTimeout(() => { killGroup(c, 'SIGKILL') }, graceMs)
    await c.exited
    clearTimeout(timer)
  }
  killGroup(c, 'SIGKILL')
  // Its last lines read, unless something still holds its pipes after the group's kill.
  await Promise.race([c.closed, sleep(2000)])
  c.detach()
  // Stopped once: the run's cleanup and the exit hook pass it by, and never signal its id again.
  spawned.delete(c)
}

/** SIGTERM to the leader's process (`consul lock` itself for the peer) → another elected, in ms. */
async function sigtermHandover (s: SideRun): Promise<number> {
  const leader = leaderOf(s)
  const t0 = monotonicMs()
  process.kill(leader.pid, 'SIGTERM')
  const next = await electedAfter(s.contenders.filter((c) => c !== leader), t0, s.timeoutMs)
  await stop(leader)
  return next.at - t0
}

/** kill -9 of the leader's whole process group → another elected, in ms. */
async function kill9Failover (s: SideRun): Promise<number> {
  const leader = leaderOf(s)
  const t0 = monotonicMs()
  process.kill(-leader.pid, 'SIGKILL')
  // A killed process cannot report its end: its leadership ended no later than now.
  leader.reports.push({ event: 'lost', at: t0 })
  const next = await electedAfter(s.contenders.filter((c) => c !== leader), t0, s.timeoutMs)
  return next.at - t0
}

/** Stops every contender left (a no-op for the exited), and counts the instants with two leaders over the round. */
async function finish (s: SideRun): Promise<number> {
  await Promise.all(s.contenders.map(async (c) => { await stop(c) }))
  const end = monotonicMs()
  return twoLeaderInstants(s.contenders.flatMap((c) => leadership(c.reports, end)))
}

interface Round { handoverMs: number, failoverMs: number, overlaps: number, loadavg: number[] }

export const r19: Scenario = {
  id: 'R19',
  title: 'leader handover on SIGTERM and failover on kill -9, 3 contenders: ours against `consul lock`',
  async run (ctx) {
    const consul = await ensureConsul()
    const agent = await startConsul()
    // Ours with the peer's fixed defaults in the real run; the smoke run takes Consul's minimum TTL and a
    // short lock delay, to fit the test's minute (the peer cannot be configured).
    const ours: Config = sized(ctx, { ttl: 10, lockDelay: 1 }, PEER)
    const runs: Record<Side, Round[]> = { ours: [], peer: [] }
    try {
      for (let round = 0; round < ctx.rounds; round++) {
        const order = rotation(SIDES, round)
        const sides = {} as Record<Side, SideRun>
        for (const side of order) {
          sides[side] = await startSide(side, agent, consul, ours, round)
        }
        // The handovers one side at a time, in the round's order.
        const handover = {} as Record<Side, number>
        for (const side of order) handover[side] = await sigtermHandover(sides[side])
        // Both kill -9s back to back in the round's order, their failovers awaited together: each waits
        // on Consul's timers (tens of seconds), not on the CPU, and one round takes the longer one only.
        const failover = await Promise.all(order.map(async (side) => await kill9Failover(sides[side])))
        for (const [i, side] of order.entries()) {
          const overlaps = await finish(sides[side])
          const r: Round = { handoverMs: handover[side], failoverMs: failover[i]!, overlaps, loadavg: loadavg() }
          runs[side].push(r)
          ctx.log(`R19 round ${round + 1} ${side}: SIGTERM → elected ${r.handoverMs.toFixed(1)} ms; kill -9 → elected ${(r.failoverMs / 1000).toFixed(2)} s; ${overlaps} instants with two leaders; load ${r.loadavg[0]!.toFixed(2)}`)
        }
      }
    } finally {
      // A failed run leaves no contender behind, a side that never elected included: stopped as at the
      // end of a round, so the test fails instead of hanging.
      await Promise.all([...spawned].map(async (c) => { await stop(c) }))
      await agent.stop()
    }
    return figures(runs, ours, ctx.rounds)
  }
}

function figures (runs: Record<Side, Round[]>, ours: Config, rounds: number): Figure[] {
  const windows = (pick: (r: Round) => number): Window[] => SIDES.flatMap((side) => runs[side].map((r, round) => ({ side, round, value: pick(r), loadavg: r.loadavg })))
  const setup = `3 contenders, ours ttl ${ours.ttl}s lockDelay ${ours.lockDelay}s, ${rounds} rounds`
  const peer = `\`consul lock <prefix> exec node child.js\` × 3 (Consul 1.8.7's Go api.Lock; the CLI has no flags for its session TTL ${PEER.ttl} s and Consul's default lock delay ${PEER.lockDelay} s, so ours runs with the same); "elected" is the child's start, as the lock holder's job starts`
  const bound = 2 * ours.ttl + ours.lockDelay
  const side = (pick: (r: Round) => number): { ours: number[], baseline: number[] } => ({ ours: runs.ours.map(pick), baseline: runs.peer.map(pick) })
  const handover = side((r) => r.handoverMs)
  const failover = side((r) => r.failoverMs / 1000)
  const overlaps = side((r) => r.overlaps)
  const o = { handover: summarize(handover.ours), failover: summarize(failover.ours) }
  const b = { handover: summarize(handover.baseline), failover: summarize(failover.baseline) }
  return [{
    id: 'R19',
    what: `SIGTERM the leader → another elected (${setup})`,
    unit: 'ms',
    ours: o.handover,
    baseline: b.handover,
    baselineName: `${peer}; SIGTERM to \`consul lock\`, which stops its child and releases`,
    ratio: b.handover.median / o.handover.median,
    target: '≤ 1000 ms (max)',
    met: o.handover.max <= 1000,
    windows: windows((r) => r.handoverMs)
  }, {
    id: 'R19',
    what: `kill -9 the leader → another elected (${setup})`,
    unit: 's',
    ours: o.failover,
    baseline: b.failover,
    baselineName: `${peer}; kill -9 of the whole process group (\`consul lock\` and its child), as a container kill does`,
    ratio: b.failover.median / o.failover.median,
    target: `≤ 2 × TTL + lock delay (${bound} s, max): Consul 1.8.7 keeps a session up to 2 × TTL after its last renewal, so TTL + lock delay is reachable by no client`,
    met: o.failover.max <= bound,
    windows: windows((r) => r.failoverMs / 1000)
  }, {
    id: 'R19',
    what: `instants with two leaders over a round (SIGTERM, kill -9, stop; ${setup})`,
    unit: 'instants',
    ours: summarize(overlaps.ours),
    baseline: summarize(overlaps.baseline),
    baselineName: `${peer}; its leadership is its child's life, from start to the SIGTERM \`consul lock\` sends it`,
    ratio: null,
    target: 'ours 0',
    met: overlaps.ours.every((n) => n === 0),
    windows: windows((r) => r.overlaps)
  }]
}
