import { Agent } from 'node:https'
import { setTimeout as sleep } from 'node:timers/promises'
import { startConsul, type ConsulAgent } from '@reg/testkit'
import { startBuiltinProxy, type BuiltinProxy } from '../builtin-proxy.js'
import { startChildServer, type ChildServer } from '../child-server.js'
import { call, callerTls, connectCaller, describe, type CallerTls, type Outcome } from '../connect-client.js'
import { createIntention, deleteIntention } from '../intentions.js'
import { sized, type Figure, type Scenario, type ScenarioContext } from '../scenario.js'
import { rotation, summarize } from '../stats.js'

// R14: from an intention change (the operator's POST, then its DELETE) to its effect on live requests
// of a Connect-native server: ours (the plugin's `connect` option) against Consul 1.8.7's built-in proxy
// in front of the same app (builtin-proxy.ts). Each side has its own destination name, so one side's
// intention never touches the other, and the two alternate who goes first every trial. The caller sends
// back-to-back requests from the moment the write is sent until the effect shows:
// - new connections (one per request): a deny must refuse, the deletion must serve again;
// - one open keep-alive connection: a deny must refuse the requests on that connection. Consul's
//   documentation says intentions do not affect existing connections, and its proxy authorizes in the
//   handshake only; a trial with no effect within the window counts as the window (the log says how many).
// A bystander caller with no intention is served right after every refusal: the refusal came from the
// intention, not from a server that went away.

const CALLER = 'r14-caller'
const BYSTANDER = 'r14-bystander'
const TARGET_MS = 1000

interface Side { name: 'ours' | 'peer', destination: string, port: number, tls: CallerTls, bystander: CallerTls }

interface Effect { ms: number, seen: boolean, outcome: Outcome | undefined, requests: number }

const refused = (o: Outcome): boolean => o.status !== 200

/** When an effect showed, from the write sent, or that it did not within the window. */
const when = (e: Effect, window: number): string => e.seen ? `${e.ms.toFixed(1)} ms` : `no effect within ${window} ms`

/**
 * Requests back to back as the caller until `want` holds, from the moment `write` is sent, for at most
 * `window` ms. On a keep-alive `agent` only requests over the connection already open count.
 */
async function untilEffect (side: Side, want: (o: Outcome) => boolean, write: () => Promise<unknown>, window: number, agent?: Agent): Promise<Effect> {
  const t0 = performance.now()
  const writing = write()
  let requests = 0
  let last: Outcome | undefined
  try {
    while (performance.now() - t0 < window) {
      const o = await call(side.port, '/ping', side.tls, agent)
      last = o
      requests++
      if (want(o) && (agent === undefined || o.reused)) return { ms: performance.now() - t0, seen: true, outcome: o, requests }
      // A request on a keep-alive agent that was not over the open connection: that connection is gone,
      // so the effect on it can no longer be seen. Stop and say so (the log line shows the new connection).
      /* c8 ignore next -- both servers keep a connection alive far longer than a trial lasts */
      if (agent !== undefined && !o.reused) return { ms: window, seen: false, outcome: o, requests }
    }
    return { ms: window, seen: false, outcome: last, requests }
  } finally {
    await writing
  }
}

/** Until `side` serves the caller on a new connection again (after a deletion), bounded. */
async function untilServed (side: Side, what: string): Promise<void> {
  const deadline = performance.now() + 30_000
  for (;;) {
    const o = await call(side.port, '/ping', side.tls)
    if (o.status === 200) return
    /* c8 ignore start -- whether a side serves at the first try (the proxy listening yet) is timing; one that never serves again fails the run, loudly */
    if (performance.now() > deadline) throw new Error(`R14 ${side.name}: ${what}: still ${describe(o)} after 30 s`)
    await sleep(20)
  }
  /* c8 ignore stop */
}

interface Trials { deny: Effect[], allow: Effect[], keepAlive: Effect[] }

async function trial (ctx: ScenarioContext, agent: ConsulAgent, side: Side, round: number, trials: Trials, window: { fresh: number, open: number }): Promise<void> {
  const tag = `R14 round ${round + 1} ${side.name}`
  const bystander = async (): Promise<string> => `bystander: ${describe(await call(side.port, '/ping', side.bystander))}`
  // New connections: deny, then delete.
  let id = ''
  const deny = await untilEffect(side, refused, async () => { id = await createIntention(agent.url, CALLER, side.destination, 'deny') }, window.fresh)
  ctx.log(`${tag} deny, new connections: ${when(deny, window.fresh)}, last answer ${describe(deny.outcome)} after ${deny.requests} requests; ${await bystander()}`)
  const allow = await untilEffect(side, (o) => o.status === 200, async () => { await deleteIntention(agent.url, id) }, window.fresh)
  ctx.log(`${tag} delete, new connections: ${when(allow, window.fresh)}, last answer ${describe(allow.outcome)} after ${allow.requests} requests`)
  await untilServed(side, 'after the deletion')
  // One open keep-alive connection, served before the deny.
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    const opened = await call(side.port, '/ping', side.tls, keepAlive)
    /* c8 ignore next -- untilServed() just saw the caller served; if it is not now, the run fails, loudly */
    if (opened.status !== 200) throw new Error(`R14 ${side.name}: the keep-alive connection was not served (${describe(opened)})`)
    const open = await untilEffect(side, refused, async () => { id = await createIntention(agent.url, CALLER, side.destination, 'deny') }, window.open, keepAlive)
    ctx.log(`${tag} deny, open keep-alive connection: ${when(open, window.open)}, last answer ${describe(open.outcome)} after ${open.requests} requests; ${await bystander()}`)
    trials.keepAlive.push(open)
  } finally {
    keepAlive.destroy()
  }
  await deleteIntention(agent.url, id)
  await untilServed(side, 'after the keep-alive trial')
  trials.deny.push(deny)
  trials.allow.push(allow)
}

const PEER = 'Consul 1.8.7\'s built-in proxy (`consul connect proxy`) in front of the same app over plain HTTP'

/** A trial without effect counts as its window: the figure can only understate how long it took. */
function figure (what: string, ours: Effect[], peer: Effect[], baselineName: string): Figure {
  const o = summarize(ours.map((e) => e.ms))
  const p = summarize(peer.map((e) => e.ms))
  return { id: 'R14', what, unit: 'ms', ours: o, baseline: p, baselineName, ratio: p.median / o.median, target: `≤ ${TARGET_MS} ms (max)`, met: o.max <= TARGET_MS }
}

export const r14: Scenario = {
  id: 'R14',
  title: 'intention change → its effect on live requests: Connect-native (ours) and Consul\'s built-in proxy',
  async run (ctx) {
    const agent = await startConsul()
    const servers: ChildServer[] = []
    let proxy: BuiltinProxy | undefined
    try {
      const env = { CONSUL_HTTP_ADDR: agent.address }
      const native = await startChildServer('connect-server.js', { ...env, MODE: 'connect', SERVICE: 'r14-native' })
      servers.push(native)
      const app = await startChildServer('connect-server.js', { ...env, MODE: 'plain', SERVICE: 'r14-app' })
      servers.push(app)
      proxy = await startBuiltinProxy(agent, 'r14-proxied', app.port)
      const [caller, bystander] = await Promise.all([connectCaller(agent.url, CALLER), connectCaller(agent.url, BYSTANDER)])
      const sides: Side[] = [
        { name: 'ours', destination: 'r14-native', port: native.port, tls: callerTls(caller, 'r14-native'), bystander: callerTls(bystander, 'r14-native') },
        { name: 'peer', destination: 'r14-proxied', port: proxy.port, tls: callerTls(caller, 'r14-proxied'), bystander: callerTls(bystander, 'r14-proxied') }
      ]
      const startedProxy = proxy
      for (const side of sides) await untilServed(side, `before the first trial${side.name === 'peer' ? ` (proxy output: ${startedProxy.log()})` : ''}`)
      const window = { fresh: sized(ctx, 3000, 5000), open: sized(ctx, 1500, 3000) }
      const results: Record<Side['name'], Trials> = { ours: { deny: [], allow: [], keepAlive: [] }, peer: { deny: [], allow: [], keepAlive: [] } }
      // ABBA: the two sides swap who goes first every trial.
      for (let round = 0; round < sized(ctx, 1, Math.max(ctx.rounds, 10)); round++) {
        for (const side of rotation(sides, round)) await trial(ctx, agent, side, round, results[side.name], window)
      }
      const { ours, peer } = results
      const unseen = (t: Trials): string => `deny ${t.deny.filter((e) => !e.seen).length}, delete ${t.allow.filter((e) => !e.seen).length}, keep-alive deny ${t.keepAlive.filter((e) => !e.seen).length}`
      ctx.log(`R14 trials with no effect within the window, of ${ours.deny.length}: ours ${unseen(ours)}; built-in proxy ${unseen(peer)}`)
      const n = ours.deny.length
      return [
        figure(`intention deny → refused, new connection per request (${n} trials)`, ours.deny, peer.deny, PEER),
        figure(`intention deleted → served again, new connection per request (${n} trials)`, ours.allow, peer.allow, PEER),
        figure(`intention deny → refused on an open keep-alive connection (${n} trials)`, ours.keepAlive, peer.keepAlive, `${PEER}; it authorizes in the handshake only, so a trial without effect counts as the ${window.open} ms window (${peer.keepAlive.filter((e) => !e.seen).length} of ${n})`)
      ]
    } finally {
      await proxy?.stop()
      await Promise.all(servers.map(async (s) => await s.stop()))
      await agent.stop()
    }
  }
}
