import type { IncomingHttpHeaders } from 'node:http'

// What changes in the headers on the way through the gateway, and nothing else. The libraries already do
// part of it, and this module does the rest (the README's header table says who does what):
// - Node's HTTP server answers `Expect: 100-continue` itself (100 Continue, or 417 for other expectations);
// - @fastify/reply-from removes the request's `Connection` and the headers it names, then sets `Host` to
//   the upstream's, before rewriteRequestHeaders; its undici path removes `Transfer-Encoding` both ways;
// - undici refuses (throws on) `Expect`, `Keep-Alive`, `Upgrade` and `Transfer-Encoding` in a request,
//   and would forward everything else, `TE`, `Trailer` and `Proxy-*` included.

/**
 * Headers that describe one connection rather than the message (RFC 9110 §7.6.1), plus the credentials
 * and challenges addressed to the proxy next to the client (§11.7): none of them is meant for the next
 * hop. On a response, the upstream's `Connection: close` or `Keep-Alive: timeout=72` are about the
 * gateway's socket to it: passed on, they would close the client's socket or promise it a keep-alive
 * time the gateway does not keep.
 */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate'
])

/**
 * Request headers the gateway consumes: Node already answered `Expect` (undici refuses it anyway), and
 * `X-Real-IP` is a single address that a client can set to anything and a proxy cannot append to: the
 * client's address travels in `Forwarded` and `X-Forwarded-For`, where the gateway appends it.
 */
const CONSUMED: ReadonlySet<string> = new Set(['expect', 'x-real-ip'])

type Headers = IncomingHttpHeaders | NodeJS.Dict<string | string[]>

/** Where a request came from and what it asked for, as the gateway saw it. */
export interface Origin {
  /** The client's address (the peer of the gateway's socket); undefined once that socket is gone. */
  ip: string | undefined
  /** The host the client asked for: the absolute-form target's authority, or else `Host`. */
  host: string
  /** The protocol the client used to reach the gateway. */
  protocol: 'http' | 'https'
}

/** Lower-cased tokens of a comma-separated header (`Connection`, `TE`). */
function tokens (value: string | string[] | undefined): string[] {
  return [value ?? []].flat().join(',').toLowerCase().split(',').map((token) => token.trim()).filter(Boolean)
}

/** `headers` without hop-by-hop ones, including those its `Connection` header names: on a response, what the client gets. */
export function endToEndHeaders (headers: Headers): Headers {
  const named = tokens(headers.connection)
  const kept: Headers = {}
  for (const [name, value] of Object.entries(headers)) {
    if (!HOP_BY_HOP.has(name) && !named.includes(name)) kept[name] = value
  }
  return kept
}

// RFC 7230's tchar: a Forwarded value made only of these needs no quotes (RFC 7239 §4).
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** A Forwarded value: a token as is, anything else (an IPv6 address, host:port) as a quoted-string. */
function forwardedValue (value: string): string {
  return TOKEN.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`
}

/** RFC 7239 §6: an IPv6 node is bracketed (then quoted); an address Node could not tell is `unknown`. */
function forwardedNode (ip: string | undefined): string {
  if (ip === undefined) return 'unknown'
  return forwardedValue(ip.includes(':') ? `[${ip}]` : ip)
}

/**
 * The request headers the upstream gets. Hop-by-hop headers are removed (`TE` keeps only `trailers`,
 * the one member that is about the message, as RFC 9110 §10.1.4 allows), and so are the headers the
 * gateway consumes. Then the gateway says where the request came from, as proxies conventionally do:
 * - it appends its own element to `Forwarded` (RFC 7239) and the client's address to `X-Forwarded-For`:
 *   what a client sent stays, so an upstream trusts only the elements its own proxies appended;
 * - it sets `X-Forwarded-Host` and `-Proto`, single values, to what it was asked (a client's are replaced);
 * - it appends `via`, its own element (`1.1 <pseudonym>`, see via.ts), to `Via` (RFC 9110 §7.6.3), so a
 *   request that comes back to it is recognised as a loop.
 */
export function upstreamRequestHeaders (origin: Origin, headers: Headers, via: string): Headers {
  const wantsTrailers = tokens(headers.te).includes('trailers')
  const kept = endToEndHeaders(headers)
  for (const name of CONSUMED) delete kept[name]
  if (wantsTrailers) kept.te = 'trailers'

  const element = `for=${forwardedNode(origin.ip)};host=${forwardedValue(origin.host)};proto=${origin.protocol}`
  return {
    ...kept,
    forwarded: [...[headers.forwarded ?? []].flat(), element].join(', '),
    'x-forwarded-for': [...[headers['x-forwarded-for'] ?? []].flat(), origin.ip ?? 'unknown'].join(', '),
    'x-forwarded-host': origin.host,
    'x-forwarded-proto': origin.protocol,
    via: [...[headers.via ?? []].flat(), via].join(', ')
  }
}
