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
    if (wildcardPorts.size === 0) return false
    const url = new URL(origin)
    return url.hostname.startsWith('127.') && wildcardPorts.has(Number(url.port === '' ? 80 : url.port))
  }
}
