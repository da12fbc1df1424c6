import type { ConsulAgent } from '@reg/testkit'

/** Registers `count` passing instances of `name` (TTL checks registered as passing), 50 at a time. */
export async function registerMany (agent: ConsulAgent, name: string, count: number, port = 1000): Promise<void> {
  for (let i = 0; i < count; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, count - i) }, async (_, j) => {
      const res = await fetch(`${agent.url}/v1/agent/service/register`, {
        method: 'PUT',
        body: JSON.stringify({ ID: `${name}-${i + j}`, Name: name, Address: '127.0.0.1', Port: port + i + j, Check: { TTL: '10m', Status: 'passing' } })
      })
      await res.arrayBuffer()
      /* c8 ignore next -- guards the setup against a refused registration; never taken with a healthy agent */
      if (res.status !== 200) throw new Error(`register ${name}-${i + j}: ${res.status}`)
    }))
  }
}
