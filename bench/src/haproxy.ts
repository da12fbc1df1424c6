import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePorts } from '@reg/testkit'

export interface Haproxy {
  url: string
  /** How many of the backend's servers HAProxy has resolved and holds UP. */
  up (): Promise<number>
  stop (): Promise<void>
}

/**
 * P10's peer baseline as users configure it: `balance leastconn`, an active `GET /health` every second
 * (`fall 2`), and `server-template` slots filled from Consul's DNS SRV records for `service`. Loopback
 * only, its config in a temporary folder, in the foreground (`-db`) so stopping the child stops it.
 */
export async function startHaproxy (bin: string, dnsPort: number, service: string, slots: number): Promise<Haproxy> {
  const [port, statsPort] = await freePorts(2) as [number, number]
  const dir = mkdtempSync(join(tmpdir(), 'reg-haproxy-'))
  const config = join(dir, 'haproxy.cfg')
  writeFileSync(config, `global
  maxconn 4096

defaults
  mode http
  timeout connect 1s
  timeout client 30s
  # As long as the gateway waits for an upstream (its 10 s timeout).
  timeout server 10s
  # Slots start empty and are filled from DNS; without this HAProxy refuses to start on an unresolved name.
  default-server init-addr none

resolvers consul
  nameserver consul 127.0.0.1:${dnsPort}
  accepted_payload_size 8192
  timeout resolve 1s
  timeout retry 1s
  hold valid 1s

frontend users
  bind 127.0.0.1:${port}
  default_backend users
  # allow-dup-ip: every replica is on 127.0.0.1 (different ports); HAProxy would otherwise fill one slot per IP.

backend users
  # allow-dup-ip: every replica is on 127.0.0.1 (different ports); HAProxy would otherwise fill one slot per IP.
  balance leastconn
  option httpchk GET /health
  default-server inter 1s fall 2 rise 2
  server-template ${service}- ${slots} _${service}._tcp.service.consul resolvers consul resolve-prefer ipv4 resolve-opts allow-dup-ip check

frontend stats
  bind 127.0.0.1:${statsPort}
  stats enable
  stats uri /stats
`)
  const child = spawn(bin, ['-db', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr!.on('data', (chunk: Buffer) => { log = (log + chunk.toString()).slice(-8192) })
  const exited = once(child, 'exit')
  const haproxy: Haproxy = {
    url: `http://127.0.0.1:${port}`,
    async up () {
      const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).text()
      // "# pxname,svname,…,status (18th),…": the backend's server rows, not its BACKEND summary.
      return csv.split('\n').filter((line) => {
        const cols = line.split(',')
        return cols[0] === 'users' && cols[1] !== 'BACKEND' && cols[17] === 'UP'
      }).length
    },
    async stop () {
      child.kill('SIGTERM')
      await exited
      rmSync(dir, { recursive: true, force: true })
    }
  }
  // Until every slot is resolved and has passed its checks (bounded: a broken config fails the run, with HAProxy's log).
  const deadline = Date.now() + 30_000
  /* c8 ignore start -- how many polls it takes, and whether the stats port answers the first, is timing; the failure is for a broken setup */
  for (;;) {
    const up = await haproxy.up().catch(() => 0)
    if (up >= slots) return haproxy
    if (Date.now() > deadline || child.exitCode !== null) {
      await haproxy.stop()
      throw new Error(`haproxy: ${up} of ${slots} servers up after 30 s\n${log}`)
    }
    await sleep(200)
  }
  /* c8 ignore stop */
}
