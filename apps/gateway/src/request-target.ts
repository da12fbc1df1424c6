import type { FastifyRequest, onRequestHookHandler } from 'fastify'
import { DuplicateHostError } from './errors.js'

// What the client asked for (RFC 9112 §3.2): the request target and the one Host header. Node's parser
// accepts both shapes of target and keeps only the first of several Host lines, so these rules are ours.

/**
 * RFC 9112 §3.2: a server MUST answer 400 to a request with more than one Host line. Node keeps the
 * first and drops the rest, so a gateway and an upstream (or a cache) in front could each believe a
 * different one; the raw header list still has them all.
 */
export const singleHost: onRequestHookHandler = function singleHost (request, _reply, done) {
  const { rawHeaders } = request.raw
  let hosts = 0
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === 'host') hosts++
  }
  done(hosts > 1 ? new DuplicateHostError() : undefined)
}

// Scheme and authority, then the rest. The router has already accepted the target (find-my-way answers
// 400 to a malformed one), so only its shape is left to take apart, the same way the router did.
const ABSOLUTE_FORM = /^https?:\/\/[^/?#]*(.*)$/is

export interface Target {
  /**
   * The path as the client wrote it (not normalised: reply-from refuses a ../ in it). reply-from takes
   * the query from the request's own URL, whichever the form.
   */
  path: string
  /** The host the client asked for: the absolute-form target's authority, or else `Host`. */
  host: string
}

/**
 * RFC 9112 §3.2.2: a server MUST accept the absolute-form (`GET http://api.example/users HTTP/1.1`, which
 * clients send to proxies), and its authority replaces `Host`. The upstream gets the origin-form.
 */
export function targetOf (request: Pick<FastifyRequest, 'url' | 'host'>): Target {
  const absolute = ABSOLUTE_FORM.exec(request.url)
  if (absolute === null) return { path: withoutQuery(request.url), host: request.host }
  // The path starts at the first / after the authority; `http://api.example?x` has the empty path: /.
  const path = withoutQuery(absolute[1]!)
  // URL drops userinfo (user:pass@), which RFC 9110 §4.2.4 forbids senders to send, and lower-cases the host.
  return { path: path === '' ? '/' : path, host: new URL(request.url).host }
}

function withoutQuery (url: string): string {
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}
