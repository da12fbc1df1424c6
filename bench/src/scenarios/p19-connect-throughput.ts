import { loadavg } from 'node:os'
import { startConsul } from '@reg/testkit'
import { startChildServer, type ChildServer } from '../child-server.js'
import { call, callerTls, connectCaller, describe, type CallerTls } from '../connect-client.js'
import { quantile } from '../open-loop.js'
import { sized, type Figure, type Scenario, type ScenarioContext, type Window } from '../scenario.js'
import { interleave, summarize } from '../stats.js'
import { throughput } from '../throughput.js'

// P19: what Connect-native mutual TLS costs. One server script (servers/connect-server.ts), one handler,
// run twice on one agent: Connect-native (connectNative(), Fastify({ https }), the plugin's `connect`
// option: every request's caller authorized, from the cache after the first) and over plain HTTP with
// the same plugin. The caller holds a leaf of its own service from the same agent, as a Connect client.
// - req/s over keep-alive connections (autocannon's 50), mTLS ÷ plain, with the harness's ABBA windows
//   and A/A null control (throughput.ts); and, to show where the cost is, the same against a third run
//   of the script serving the same mutual TLS without the `connect` option (no request authorized);
// - new connections, one request each, one after the other: connect → answer, p50 and p99 per round,
//   mTLS against plain. That time holds the whole handshake, the server's check of the client
//   certificate and the authorization included (with TLS 1.3 the client's 'secureConnect' comes before
//   the server has checked its certificate, so the handshake alone as the client sees it is only logged).

const CALLER = 'p19-caller'

interface Batch { answer: { p50: number, p99: number }, handshake: { p50: number, p99: number } }

/** `count` requests, each on a new connection, one after the other; every one must be answered 200. */
async function batch (port: number, tls: CallerTls | undefined, count: number, side: string): Promise<Batch> {
  const answer: number[] = []
  const handshake: number[] = []
  for (let i = 0; i < count; i++) {
    const o = await call(port, '/ping', tls)
    /* c8 ignore next -- the caller was served before any batch; a refusal now fails the run, loudly */
    if (o.status !== 200) throw new Error(`P19 ${side}: a new connection was not served (${describe(o)})`)
    answer.push(o.ms)
    handshake.push(o.handshakeMs!)
  }
  const q = (xs: number[]): { p50: number, p99: number } => {
    const sorted = [...xs].sort((a, b) => a - b)
    return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) }
  }
  return { answer: q(answer), handshake: q(handshake) }
}

/** The p50 and p99 figures of the new-connection batches, each round's value kept as a window. */
async function newConnections (ctx: ScenarioContext, tlsPort: number, plainPort: number, tls: CallerTls): Promise<Figure[]> {
  const count = sized(ctx, 20, 500)
  // Warm both servers' code paths (and ours' authorization cache) before any batch is timed.
  await batch(tlsPort, tls, 10, 'mTLS warm-up')
  await batch(plainPort, undefined, 10, 'plain warm-up')
  const got = await interleave(ctx.rounds, async (round) => {
    const b = await batch(tlsPort, tls, count, 'mTLS')
    ctx.log(`P19 round ${round + 1} mTLS, ${count} new connections: connect → answer p50 ${b.answer.p50.toFixed(2)} ms, p99 ${b.answer.p99.toFixed(2)} ms; client-side handshake p50 ${b.handshake.p50.toFixed(2)} ms, p99 ${b.handshake.p99.toFixed(2)} ms`)
    return { b, loadavg: loadavg() }
  }, async (round) => {
    const b = await batch(plainPort, undefined, count, 'plain')
    ctx.log(`P19 round ${round + 1} plain, ${count} new connections: connect → answer p50 ${b.answer.p50.toFixed(2)} ms, p99 ${b.answer.p99.toFixed(2)} ms; TCP connect p50 ${b.handshake.p50.toFixed(2)} ms`)
    return { b, loadavg: loadavg() }
  })
  return (['p50', 'p99'] as const).map((q) => {
    const ours = got.a.map((r) => r.b.answer[q])
    const plain = got.b.map((r) => r.b.answer[q])
    const windows: Window[] = [
      ...got.a.map((r, round) => ({ side: 'ours', round, value: r.b.answer[q], loadavg: r.loadavg })),
      ...got.b.map((r, round) => ({ side: 'baseline', round, value: r.b.answer[q], loadavg: r.loadavg }))
    ]
    const o = summarize(ours)
    const b = summarize(plain)
    return {
      id: 'P19',
      what: `new connection → answer, mTLS handshake included, ${q} (${count} connections per round)`,
      unit: 'ms',
      ours: o,
      baseline: b,
      baselineName: 'the same app over plain HTTP, new connection per request',
      ratio: b.median / o.median,
      target: '–',
      met: undefined,
      windows
    }
  })
}

export const p19: Scenario = {
  id: 'P19',
  title: 'Connect-native mTLS ÷ plain HTTP: req/s with keep-alive, and new connections\' handshake p50/p99',
  async run (ctx) {
    const agent = await startConsul()
    const servers: ChildServer[] = []
    try {
      const env = { CONSUL_HTTP_ADDR: agent.address }
      const native = await startChildServer('connect-server.js', { ...env, MODE: 'connect', SERVICE: 'p19-native' })
      servers.push(native)
      const plain = await startChildServer('connect-server.js', { ...env, MODE: 'plain', SERVICE: 'p19-plain' })
      servers.push(plain)
      const tlsOnly = await startChildServer('connect-server.js', { ...env, MODE: 'tls', SERVICE: 'p19-tls' })
      servers.push(tlsOnly)
      const caller = await connectCaller(agent.url, CALLER)
      const tls = callerTls(caller, 'p19-native')
      // autocannon's: it does not check the server (it sets rejectUnauthorized: false itself).
      const clientTls = { ca: caller.ca, cert: caller.cert, key: caller.key }
      // The caller's first request is authorized with the agent: it must be served before any load.
      const first = await call(native.port, '/ping', tls)
      /* c8 ignore next -- a -dev agent allows every caller by default; if ours refuses, the run fails, loudly */
      if (first.status !== 200) throw new Error(`P19: the Connect caller was not served (${describe(first)})`)
      // The negative control: the same caller without its certificate. Served, it would mean the req/s
      // below were not measured over mutual TLS at all.
      const anonymous = await call(native.port, '/ping', { ca: tls.ca, checkServerIdentity: tls.checkServerIdentity })
      /* c8 ignore next -- the control failing: the run fails, loudly, rather than print a figure that is not over mTLS */
      if (anonymous.status === 200) throw new Error('P19: the Connect-native server served a caller without a certificate')
      ctx.log(`P19 negative control: a caller without a client certificate is refused (${describe(anonymous)})`)
      const rate = await throughput(ctx, {
        id: 'P19',
        what: 'req/s over Connect-native mTLS, keep-alive (50 connections)',
        ours: `https://127.0.0.1:${native.port}/ping`,
        baseline: `${plain.url}/ping`,
        baselineName: 'the same app and handler over plain HTTP, same 50 connections',
        target: 0.9,
        tls: { ours: clientTls }
      })
      // Where the cost is: the same mutual TLS with the same certificates, but no authorization per
      // request. Ours ÷ that is what the plugin adds on top of Node's TLS; no target of the issue's.
      const split = await throughput(ctx, {
        id: 'P19',
        what: 'req/s over Connect-native mTLS ÷ the same mTLS without authorization, keep-alive (50 connections)',
        ours: `https://127.0.0.1:${native.port}/ping`,
        baseline: `https://127.0.0.1:${tlsOnly.port}/ping`,
        baselineName: 'the same app, certificates and TLS options without the plugin\'s `connect` option (no request authorized)',
        target: 0.9,
        tls: { ours: clientTls, baseline: clientTls }
      })
      return [rate, { ...split, target: '–', met: undefined, verdict: undefined }, ...await newConnections(ctx, native.port, plain.port, tls)]
    } finally {
      await Promise.all(servers.map(async (s) => await s.stop()))
      await agent.stop()
    }
  }
}
