import { isIPv6 } from 'node:net'

/** `[::1]` for IPv6, the host unchanged otherwise: what goes between `//` and `:port` in a URL. */
export function urlHost (host: string): string {
  return isIPv6(host) ? `[${host}]` : host
}
