import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePorts } from '@reg/testkit'

export interface Haproxy {
  url: string
  /** The configuration it runs with, as written to its file. */
  config: string
  /** How many of the backend's servers HAProxy has resolved and holds UP. */
  up (): Promise<number>
  stop (): Promise<void>
}

export interface HaproxyConfig {
  port: number
  statsPort: number
  dnsPort: number
  service: string
  slots: number
  /** Our dispatcher's per-try timeout (the gateway's `perTryTimeout`), as HAProxy reads it: "2s". */
  perTryTimeout: string
}

/**
 * P10's peer as its users would configure it for the same job, with every knob our gateway has (see
 * bench/README.md, line by line, and shared CONSUL.md "HAProxy as a fair peer"): a per-try timeout,
 * 3 retries redispatched to another server, passive ejection on layer-7 errors, fast active checks,
 * least connections, and its servers filled from Consul's DNS SRV records for `service`.
 */
export function haproxyConfig (c: HaproxyConfig): string {
  return `global
  maxconn 4096

defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server ${c.perTryTimeout}
  timeout check 1s
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response response-timeout
  default-server init-addr none

resolvers consul
  nameserver consul 127.0.0.1:${c.dnsPort}
  accepted_payload_size 8192
  timeout resolve 1s
  timeout retry 1s
  hold valid 1s

frontend users
  bind 127.0.0.1:${c.port}
  default_backend users

backend users
  balance leastconn
  option httpchk GET /health
  default-server check inter 1s fastinter 250ms downinter 1s rise 2 fall 2 observe layer7 error-limit 3 on-error mark-down
  server-template ${c.service}- ${c.slots} _${c.service}._tcp.service.consul resolvers consul resolve-prefer ipv4 resolve-opts allow-dup-ip

frontend stats
  bind 127.0.0.1:${c.statsPort}
  stats enable
  stats uri /stats
`
}

/** Starts HAProxy with `haproxyConfig`, loopback only, in the foreground (`-db`) so stopping the child stops it. */
export async function startHaproxy (bin: string, dnsPort: number, service: string, slots: number, perTryTimeout = '2s'): Promise<Haproxy> {
  const [port, statsPort] = await freePorts(2) as [number, number]
  const dir = mkdtempSync(join(tmpdir(), 'reg-haproxy-'))
  const config = join(dir, 'haproxy.cfg')
  const text = haproxyConfig({ port, statsPort, dnsPort, service, slots, perTryTimeout })
  writeFileSync(config, text)
  const child = spawn(bin, ['-db', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr!.on('data', (chunk: Buffer) => { log = (log + chunk.toString()).slice(-8192) })
  const exited = once(child, 'exit')
  const haproxy: Haproxy = {
    url: `http://127.0.0.1:${port}`,
    config: text,
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
