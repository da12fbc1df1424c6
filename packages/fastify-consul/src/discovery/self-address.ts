import { isIPv4 } from 'node:net'
import { networkInterfaces } from 'node:os'
import { httpOrigin } from '../consul/address.js'

/** One address the process listens on, as `fastify.addresses()` / `server.address()` report it. */
export interface ListeningAddress {
  readonly address: string
  readonly port: number
}

const UNSPECIFIED = new Set(['0.0.0.0', '::', '::0', '0:0:0:0:0:0:0:0'])
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1)$/

/** Every address of this machine's interfaces, loopback included. */
export function interfaceAddresses (): string[] {
  /* c8 ignore next -- Node's typings allow an undefined entry; the object it returns never has one */
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address))
}

/**
 * Whether an origin is this process itself. A service instance registered at one of our own addresses (a
 * copy-pasted address, a gateway registered under the name it proxies) would make the dispatcher send a
 * request to its own server, which forwards it again: one client request becomes hundreds. A wildcard
 * bind answers on every interface address of its family and on all of 127.0.0.0/8; a loopback one also
 * as `localhost`. Names that merely resolve to us are not caught here; the gateway's `Via` check covers
 * those.
 */
export function selfMatcher (listening: readonly ListeningAddress[], interfaces: readonly string[] = interfaceAddresses()): (origin: string) => boolean {
  const origins = new Set<string>()
  const wildcardPorts = new Set<number>()
  const add = (address: string, port: number): void => {
    const o = httpOrigin(address, port)
    if ('origin' in o) origins.add(o.origin)
  }
  for (const { address, port } of listening) {
    const wildcard = UNSPECIFIED.has(address)
    // 0.0.0.0 takes IPv4 only; :: is dual-stack on Linux and takes both.
    const hosts = wildcard ? interfaces.filter((a) => address !== '0.0.0.0' || isIPv4(a)) : [address]
    if (wildcard) wildcardPorts.add(port)
    for (const host of hosts) {
      add(host, port)
      if (LOOPBACK.test(host)) add('localhost', port)
    }
  }
  if (origins.size === 0) return () => false
  return (origin) => {
    if (origins.has(origin)) return true
    const url = new URL(origin)
    const host = canonicalHost(url.hostname)
    const port = Number(url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : url.port)
    // A Connect-native instance's origin is https: ours are kept as http, and a port is one process either way.
    if ((host !== url.hostname || url.protocol === 'https:') && origins.has(new URL(`http://${host}:${port}`).origin)) return true
    return host.startsWith('127.') && wildcardPorts.has(port)
  }
}

/**
 * The address a connection to `hostname` really reaches, for the comparison above: an IPv4-mapped
 * IPv6 address (`::ffff:127.0.0.1`, which URL writes `[::ffff:7f00:1]`) is its IPv4 address, and the
 * unspecified addresses (`0.0.0.0`, `::`) connect to this host's loopback on Linux.
 */
function canonicalHost (hostname: string): string {
  if (hostname === '0.0.0.0') return '127.0.0.1'
  if (hostname === '[::]') return '[::1]'
  const mapped = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/.exec(hostname)
  if (mapped === null) return hostname
  const hi = parseInt(mapped[1]!, 16)
  const lo = parseInt(mapped[2]!, 16)
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`
}
