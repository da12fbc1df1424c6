import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyRequest } from 'fastify'

// What changes in the headers on the way through the gateway, and nothing else. reply-from already drops
// the request's hop-by-hop headers; these two functions complete it for forwarding information and for
// the response.

/**
 * Headers that describe one connection rather than the message (RFC 9110 §7.6.1). The upstream's
 * `Connection: close` or `Keep-Alive: timeout=72` are about the gateway's socket to it: passed on, they
 * would close the client's socket or tell the client a keep-alive time the gateway does not keep.
 */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'
])

type Headers = IncomingHttpHeaders | NodeJS.Dict<string | string[]>

/** The upstream's response headers without hop-by-hop ones, including those its `Connection` header names. */
export function endToEndHeaders (headers: Headers): Headers {
  const named = String(headers.connection ?? '').toLowerCase().split(',').map((name) => name.trim())
  const kept: Headers = {}
  for (const [name, value] of Object.entries(headers)) {
    if (!HOP_BY_HOP.has(name) && !named.includes(name)) kept[name] = value
  }
  return kept
}

/**
 * The request headers plus where the request came from, as proxies conventionally say it: the client's
 * address appended to `X-Forwarded-For`, and `X-Forwarded-Host` / `-Proto` set to what this gateway was
 * asked (overwritten, not trusted from the client). reply-from has already set `Host` to the upstream's.
 */
export function forwardedHeaders (request: Pick<FastifyRequest, 'ip' | 'host' | 'protocol'>, headers: Headers): Headers {
  const chain = [headers['x-forwarded-for'] ?? []].flat()
  return {
    ...headers,
    'x-forwarded-for': [...chain, request.ip].join(', '),
    'x-forwarded-host': request.host,
    'x-forwarded-proto': request.protocol
  }
}
