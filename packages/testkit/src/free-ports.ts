import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'

/** Where Linux says which local ports it hands to outgoing connections. */
const RANGE_FILE = '/proc/sys/net/ipv4/ip_local_port_range'

/**
 * The kernel's range of ephemeral ports ("32768\t60999"), or undefined where it cannot be read or
 * makes no sense (not Linux).
 */
export function ephemeralRange (text: string | undefined): [number, number] | undefined {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text ?? '')
  if (!m) return undefined
  const low = Number(m[1])
  const high = Number(m[2])
  return low >= 1 && low <= high && high <= 65535 ? [low, high] : undefined
}

/**
 * The ports to draw from: below the ephemeral range (down to 10000, past the well-known services), then
 * above it. Empty when the ephemeral range leaves too little room; freePorts() then asks the kernel.
 */
export function outsidePool (range: [number, number] | undefined): Array<[number, number]> {
  if (!range) return []
  const pool: Array<[number, number]> = []
  if (range[0] - 10000 >= 1000) pool.push([10000, range[0] - 1])
  if (65535 - range[1] >= 1000) pool.push([range[1] + 1, 65535])
  return pool
}

/* c8 ignore start -- the catch runs only where /proc is missing (macOS); ephemeralRange(undefined) is tested */
function readRange (): [number, number] | undefined {
  try {
    return ephemeralRange(readFileSync(RANGE_FILE, 'utf8'))
  } catch {
    return undefined
  }
}
/* c8 ignore stop */

async function listen (port: number): Promise<Server | undefined> {
  return await new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(undefined))
    server.listen(port, '127.0.0.1', () => resolve(server))
  })
}

/** A random port of the pool: a random range, then a random port in it. */
function draw (pool: Array<[number, number]>): number {
  const [low, high] = pool[Math.floor(Math.random() * pool.length)]!
  return low + Math.floor(Math.random() * (high - low + 1))
}

/**
 * `count` distinct ports that were free on 127.0.0.1 a moment ago. All sockets stay open until every
 * port is known, so the kernel cannot hand the same port out twice within one call.
 *
 * The ports are drawn from outside the kernel's ephemeral range (`pool`, by default read from /proc).
 * A port the kernel picked for `listen(0)` comes from that range, which is also where every outgoing
 * connection's local port comes from: between this call and the caller's own bind, a connection to
 * Consul or a replica could take it, and a replica would die on EADDRINUSE (the bench's
 * "timed out waiting for user-service" flake). Outside the range only another listener can collide.
 */
export async function freePorts (count: number, pool: Array<[number, number]> = outsidePool(readRange())): Promise<number[]> {
  const servers: Server[] = []
  try {
    for (let tries = 0; servers.length < count && pool.length > 0 && tries < count * 50; tries++) {
      const port = draw(pool)
      if (servers.some((s) => (s.address() as import('node:net').AddressInfo).port === port)) continue
      const server = await listen(port)
      if (server) servers.push(server)
    }
    while (servers.length < count) {
      const server = await listen(0)
      /* c8 ignore next -- the kernel refusing a port of its own choosing means it has none left */
      if (!server) throw new Error('no free port on 127.0.0.1')
      servers.push(server)
    }
    return servers.map((s) => (s.address() as import('node:net').AddressInfo).port)
  } finally {
    await Promise.all(servers.map(async (s) => await new Promise((resolve) => s.close(resolve))))
  }
}
