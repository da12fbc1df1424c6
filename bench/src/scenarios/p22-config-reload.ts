import { fork } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { startConsul } from '@reg/testkit'
import { request } from 'undici'
import { sized, type Scenario } from '../scenario.js'
import { summarize, verdict } from '../stats.js'

const kvPut = async (url: string, key: string, value: string): Promise<void> => {
  const res = await request(`${url}/v1/kv/${key}`, { method: 'PUT', body: value })
  await res.body.arrayBuffer()
}

/** The instant on the wall clock, as the waiters report theirs (servers/kv-waiter.ts). */
const now = (): number => performance.timeOrigin + performance.now()

interface Waiter { arm (index: string): void, next (): Promise<number>, stop (): Promise<void> }

/** One servers/kv-waiter.js process, once it is ready; next(), called before the write, is the instant of its wake-up. */
async function waiter (kind: 'config' | 'raw', address: string): Promise<Waiter> {
  const child = fork(new URL('../../dist/servers/kv-waiter.js', import.meta.url), [], { env: { ...process.env, WAITER: kind, CONSUL_HTTP_ADDR: address }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
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
    arm: (index) => { child.send({ arm: index }) },
    next: async () => await new Promise<number>((resolve) => { wanted = resolve }),
    async stop () { child.kill('SIGTERM'); await exited }
  }
}

export const p22: Scenario = {
  id: 'P22',
  title: 'kv put → the new value in fastify.config ÷ a raw blocking query on the same prefix',
  async run (ctx) {
    const agent = await startConsul()
    await kvPut(agent.url, 'config/p22/n', '0')
    const waiters: Waiter[] = []
    try {
      // Each waiter has a process of its own (see servers/kv-waiter.ts); the null control is a second
      // raw query on the same write: how far two identical waiters drift apart.
      const [ours, rawA, rawB] = await Promise.all([waiter('config', agent.address), waiter('raw', agent.address), waiter('raw', agent.address)])
      waiters.push(ours, rawA, rawB)
      const oursMs: number[] = []
      const raw: number[] = []
      const ratios: number[] = []
      const aa: number[] = []
      const trials = sized(ctx, 3, 25)
      for (let n = 1; n <= trials; n++) {
        const first = await request(`${agent.url}/v1/kv/config/?recurse`)
        await first.body.arrayBuffer()
        const index = first.headers['x-consul-index'] as string
        rawA.arm(index)
        rawB.arm(index)
        // The blocking queries must be parked at the agent before the write, or we time the arming; the
        // plugin's own query re-arms itself after the previous change (its rate limit allows 20 a second).
        await sleep(100)
        const wakes = Promise.all([ours.next(), rawA.next(), rawB.next()])
        const t0 = now()
        await kvPut(agent.url, 'config/p22/n', String(n))
        const [o, a, b] = (await wakes).map((x) => x - t0) as [number, number, number]
        oursMs.push(o)
        raw.push(a)
        ratios.push(a / o)
        aa.push(a / b)
      }
      const o = summarize(oursMs)
      const r = summarize(raw)
      // Lower is better: raw ÷ ours ≥ 1 / 1.2 is the "at most 1.2× Consul's own wake-up".
      const v = verdict(ratios, 1 / 1.2, aa)
      ctx.log(`P22 median: fastify.config changed ${o.median.toFixed(2)} ms, raw blocking query ${r.median.toFixed(2)} ms; A/A ${summarize(aa).median.toFixed(3)} → ${v.text} (${trials} writes)`)
      return [{
        id: 'P22',
        what: `kv put → new value in fastify.config (${trials} writes)`,
        unit: 'ms',
        ours: o,
        baseline: r,
        baselineName: 'raw undici blocking query on the prefix, same write, each waiter in its own process',
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
