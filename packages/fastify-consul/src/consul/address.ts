import { isIPv6 } from 'node:net'

/** `[::1]` for IPv6, the host unchanged otherwise: what goes between `//` and `:port` in a URL. */
export function urlHost (host: string): string {
  return isIPv6(host) ? `[${host}]` : host
}

/**
 * The `http://host:port` origin of an address and port read from Consul, or why there is none.
 *
 * Consul stores whatever a registration sent (`127.0.0.1:14002`, `fe80::1%lo`, `unix:///x.sock`,
 * `bad host`, markup), and every caller that watches the service reads the same entry. undici's
 * `new Pool(origin)` throws synchronously on such values, so they are refused here, once, when the
 * entry is parsed, instead of wherever a pool happens to be built. The test is what undici itself does
 * (WHATWG URL), plus what it would silently reinterpret: a path, credentials or a query smuggled in the
 * address, port 0 (nothing listens there), and host names longer than DNS allows.
 */
export function httpOrigin (address: string, port: number): { origin: string } | { reason: string } {
  if (!Number.isInteger(port) || port < 1 || port > 65535) return { reason: 'port out of range 1–65535' }
  if (address === '') return { reason: 'empty address' }
  const origin = `http://${urlHost(address)}:${port}`
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    return { reason: 'not a host name or IP address' }
  }
  if (url.username !== '' || url.password !== '' || url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    return { reason: 'not a host name or IP address' }
  }
  // WHATWG URL takes a 20,000-character host; DNS does not (RFC 1035: 253). Such a name can only fail
  // a lookup per try, so it is refused with the rest.
  if (url.hostname.length > 253) return { reason: 'host name longer than 253 characters' }
  // A port in the address itself (`10.0.0.1:8080`) parses as IPv6-looking garbage and fails above; one
  // that URL accepted but moved (`host:1` + port) would show here.
  if (url.port !== String(port) && !(port === 80 && url.port === '')) return { reason: 'port does not survive URL parsing' }
  return { origin: url.origin }
}
