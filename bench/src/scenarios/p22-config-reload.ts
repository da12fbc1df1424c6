import { fork } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { startConsul } from '@reg/testkit'
import { request } from 'undici'
import { sized, type Scenario } from '../scenario.js'
import { monotonicMs } from '../servers/kv-clock.js'
import { rotation, summarize, verdict } from '../stats.js'

const kvPut = async (url: string, key: string, value: string): Promise<void> => {
  const res = await request(`${url}/v1/kv/${key}`, { method: 'PUT', body: value })
  await res.body.arrayBuffer()
}

interface Waiter { next (): Promise<number>, stop (): Promise<void> }

/** One servers/kv-waiter.js process, once it is ready; next(), called before the write, is the instant of its wake-up. */
async function waiter (kind: 'config' | 'raw', address: string, prefix: string): Promise<Waiter> {
  const child = fork(new URL('../../dist/servers/kv-waiter.js', import.meta.url), [], { env: { ...process.env, WAITER: kind, CONSUL_HTTP_ADDR: address, PREFIX: prefix }, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  // Piped, not inherited: see child-server.ts.
  child.stderr!.pipe(process.stderr, { end: false })
  const exited = once(child, 'exit')
  let wanted: ((at: number) => void) | undefined
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (msg: { ready?: true, woke?: number, error?: string }) => {
      if (msg.ready) resolve()
      /* c8 ignore next -- a raw query that fails (the agent gone mid-run) fails the run, loudly */
      if (msg.error) reject(new Error(`P22 ${kind} waiter: ${msg.error}`))
      if (msg.woke !== undefined) {
        const resolve = wanted
        wanted = undefined
        resolve?.(msg.woke)
      }
    })
  })
  await Promise.race([ready, exited.then(([code]) => { throw new Error(`P22 ${kind} waiter exited ${String(code)} before it was ready`) })])
  return {
    next: async () => await new Promise<number>((resolve) => { wanted = resolve }),
    async stop () { child.kill('SIGTERM'); await exited }
  }
}

export const p22: Scenario = {
  id: 'P22',
  title: 'kv put → the new value in fastify.config ÷ a raw blocking query on the same prefix',
  async run (ctx) {
    const agent = await startConsul()
    // One key per waiter, each under a prefix of its own (servers/kv-waiter.ts): ours reads `config/`.
    const keys = { ours: 'config/p22/n', rawA: 'p22a/n', rawB: 'p22b/n' } as const
    for (const key of Object.values(keys)) await kvPut(agent.url, key, '0')
    const waiters: Waiter[] = []
    try {
      // The null control is a second raw waiter: how far two identical waiters drift apart.
      const [ours, rawA, rawB] = await Promise.all([waiter('config', agent.address, 'config'), waiter('raw', agent.address, 'p22a'), waiter('raw', agent.address, 'p22b')])
      waiters.push(ours, rawA, rawB)
      const side = { ours, rawA, rawB }
      const trials = sized(ctx, 4, 100)
      const ms: Record<keyof typeof keys, number[]> = { ours: [], rawA: [], rawB: [] }
      // Each trial writes once to each waiter's key, alone (the others idle), in an order rotated by one
      // every trial so no side always comes first. n = 0 is a warm-up, not counted.
      for (let n = 0; n <= trials; n++) {
        for (const name of rotation(['ours', 'rawA', 'rawB'] as const, n)) {
          // The waiter's query must be parked at the agent again (the plugin's limiter allows 20 queries a
          // second), or we time the arming.
          await sleep(100)
          const woke = side[name].next()
          const t0 = monotonicMs()
          await kvPut(agent.url, keys[name], String(n + 1))
          const at = await woke
          if (n > 0) ms[name].push(at - t0)
        }
      }
      const oursMs = ms.ours
      const raw = ms.rawA
      const ratios = raw.map((r, i) => r / oursMs[i]!)
      const aa = raw.map((r, i) => r / ms.rawB[i]!)
      const o = summarize(oursMs)
      const r = summarize(raw)
      // Lower is better: raw ÷ ours ≥ 1 / 1.2 is the "at most 1.2× Consul's own wake-up".
      const v = verdict(ratios, 1 / 1.2, aa)
      ctx.log(`P22 median: fastify.config changed ${o.median.toFixed(2)} ms, raw blocking query ${r.median.toFixed(2)} ms; raw ÷ ours, 95 % interval of the mean ${v.interval.map((x) => x.toFixed(3)).join('–')} (target ≥ ${(1 / 1.2).toFixed(3)}); A/A ${summarize(aa).median.toFixed(3)} → ${v.text} (${trials} writes)`)
      return [{
        id: 'P22',
        what: `kv put → new value in fastify.config (${trials} writes)`,
        unit: 'ms',
        ours: o,
        baseline: r,
        baselineName: 'raw undici blocking query on a prefix, re-armed at each answer; one waiter per prefix and per process, writes in rotated order',
        ratio: r.median / o.median,
        target: '≤ 1.2× the raw wake-up',
        met: v.met,
        verdict: v.text,
        aa: summarize(aa)
      }]
    } finally {
      await Promise.all(waiters.map(async (w) => await w.stop()))
      await agent.stop()
    }
  }
}
