import { hostname } from 'node:os'
import type { onRequestHookHandler } from 'fastify'
import { LoopDetectedError } from './errors.js'

// The gateway's `Via` header (RFC 9110 §7.6.3): each proxy appends `<protocol> <received-by>`, so a
// request that comes back to a gateway it already went through is a forwarding loop. Without it, an
// upstream instance registered at the gateway's own address turned one client request into hundreds
// (issue #31): every hop retried, and the loop ended only when the forwarded headers passed 16 KB.

/** RFC 9110 §5.6.2 token: a pseudonym must be one, or the Via element it goes into would not parse. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

export function isPseudonym (value: unknown): value is string {
  return typeof value === 'string' && TOKEN.test(value)
}

/**
 * The default pseudonym: the gateway's Consul service id, given or as @reg/fastify-consul derives it
 * (`gateway-<hostname>-<port>`, `-` for anything outside its alphabet). The service id is unique per
 * agent and includes the port, so two gateways in a chain, even on one host, never share a pseudonym
 * (a hostname would collide), and an operator reading Via sees which gateways a request went through.
 * Before listen (under inject()) there is no port yet: `gateway-<hostname>`.
 */
export function defaultPseudonym (name: string, serviceId: string | undefined, port: number | undefined, host = hostname()): string {
  const id = serviceId ?? (port === undefined ? `${name}-${host}` : `${name}-${host}-${port}`)
  return id.replace(/[^!#$%&'*+\-.^_`|~0-9A-Za-z]/g, '-')
}

/** `1.1 gateway-a`: the protocol version the request arrived with (`HTTP/` omitted, RFC 9110 §7.6.3), and us. */
export function viaElement (httpVersion: string, pseudonym: string): string {
  return `${httpVersion === '2.0' ? '2' : httpVersion} ${pseudonym}`
}

/**
 * `text` without its comments (`(…)`, nested, with quoted-pairs), which may hold commas and spaces and
 * say nothing about who forwarded. One pass: the header is the client's, and a regex re-run per nesting
 * level would make 16 KB of `(((…` cost millions of steps per request.
 */
function withoutComments (text: string): string {
  let out = ''
  let depth = 0
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (depth > 0 && c === '\\') {
      i++
    } else if (c === '(') {
      depth++
    } else if (c === ')' && depth > 0) {
      depth--
      if (depth === 0) out += ' '
    } else if (depth === 0) {
      out += c
    }
  }
  return out
}

/** The received-by of every element of a Via header: `1.0 fred, 1.1 p.example.net (Apache)` → fred, p.example.net. */
export function receivedBy (via: string | string[] | undefined): string[] {
  const text = withoutComments([via ?? []].flat().join(','))
  return text.split(',').map((element) => element.trim().split(/[ \t]+/)[1]).filter((by): by is string => by !== undefined)
}

/**
 * Refuses, with 508 FST_REG_GATEWAY_LOOP_DETECTED, a request whose Via already names this gateway:
 * it has been here before, and forwarding it again would go round once more. `pseudonym()` is read per
 * request because the default is only fixed at listen.
 */
export function refuseLoops (pseudonym: () => string): onRequestHookHandler {
  return function refuseLoops (request, _reply, done) {
    const via = request.headers.via
    done(via !== undefined && receivedBy(via).includes(pseudonym()) ? new LoopDetectedError() : undefined)
  }
}
