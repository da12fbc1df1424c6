import replyFrom, { type FastifyReplyFromHooks } from '@fastify/reply-from'
import { classifyFailure, type ServiceDispatcher } from '@reg/fastify-consul'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { BadGatewayError, UpstreamTimeoutError } from './errors.js'
import { endToEndHeaders, upstreamRequestHeaders } from './headers.js'
import { targetOf } from './request-target.js'
import { viaElement } from './via.js'

export interface ProxyOptions {
  /** Consul service name of the upstream, for error messages and reply-from's placeholder origin. */
  upstream: string
  /** Picks a healthy instance per request, retries connection failures elsewhere, ejects refusing instances. */
  dispatcher: ServiceDispatcher
  /** Milliseconds the upstream has to start answering (and, once it has, between two body chunks). */
  timeout: number
  /** The gateway's pseudonym in `Via`; read per request, since the default is fixed at listen. */
  pseudonym: () => string
}

/**
 * The methods proxied, which is every method a REST client sends. TRACE is left out on purpose: a gateway
 * that forwards it lets the upstream reflect the client's headers back (cross-site tracing).
 */
export const PROXIED_METHODS = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT'] as const

/** The paths proxied, as they are: the upstream sees `/users…` exactly as the client sent it, query included. */
export const PROXIED_PATHS = ['/users', '/users/*'] as const

/**
 * What the client gets when the upstream could not answer. reply-from wraps the dispatcher's error (into
 * a 500 for most codes); the decision is made on the wrapped cause, which carries the real code.
 */
export function upstreamError (upstream: string, error: Error): Error {
  const cause = (error.cause ?? error) as Error & { code?: string }
  // 503 with @reg/fastify-consul's own coded errors: "No healthy instance of <upstream>", and (an
  // upstream whose instances are all Connect-native while this gateway has no REG_CONNECT) "a Connect
  // identity is required": both say what to fix, which a generic 502 would hide.
  if (cause.code === 'FST_REG_DISCOVERY_NO_INSTANCE' || cause.code === 'FST_REG_CONNECT_IDENTITY_REQUIRED') return cause
  // The dispatcher's classifier says whether the upstream never started an answer in time (504); anything
  // else that fails is a bad gateway.
  if (classifyFailure(cause).late) return new UpstreamTimeoutError(upstream, { cause })
  return new BadGatewayError(upstream, { cause })
}

// Not wrapped in fastify-plugin: the body parsers and the reply.from decorator stay in this scope, so the
// gateway's own routes (/health) keep Fastify's defaults.
export const proxyRoutes: FastifyPluginAsync<ProxyOptions> = async function proxyRoutes (fastify, { upstream, dispatcher, timeout, pseudonym }) {
  // Bodies are read as bytes, never parsed: the upstream validates them, and bytes, charset and content
  // type arrive exactly as sent, whatever the type. Bytes, not the client's stream: they can be sent
  // again when the dispatcher retries, Fastify's bodyLimit caps them (413), and a failed upstream request
  // cannot touch the client's socket (undici destroys a stream body when its request fails).
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => { done(null, body) })

  await fastify.register(replyFrom, {
    // A placeholder origin: the dispatcher ignores it and sends each request to an instance it picks.
    base: `http://${upstream}`,
    undici: dispatcher,
    // reply-from logs two info lines per request; Fastify's own request log already says everything.
    disableRequestLogging: true
  })

  const hooks: FastifyReplyFromHooks = {
    timeout,
    // One retry layer, the dispatcher's: it retries on another instance within its retry budget.
    // reply-from's own loop (up to 10 delayed GET retries on a 503, same target, no budget) stays off.
    retryDelay: () => null,
    rewriteHeaders: endToEndHeaders,
    onError (reply, { error }) {
      reply.send(upstreamError(upstream, error))
    }
  }

  function proxy (request: FastifyRequest, reply: FastifyReply): void {
    // Absolute-form or origin-form, the upstream gets the path (reply-from adds the query) and hears
    // which host the client asked for, and that it went through this gateway (Via).
    const { path, host } = targetOf(request)
    const via = viaElement(request.raw.httpVersion, pseudonym())
    const forwarding: FastifyReplyFromHooks = {
      ...hooks,
      rewriteRequestHeaders: (request, headers) => upstreamRequestHeaders({ ip: request.ip, host, protocol: request.protocol }, headers, via)
    }
    // The upstream's answer, x-instance-id included, is streamed back as is.
    if (request.body === undefined) {
      reply.from(path, forwarding)
      return
    }
    // With a contentType, reply-from sends the body as given instead of serialising it as JSON. No
    // content type at all is octet-stream, the type RFC 9110 §8.3 lets a recipient assume.
    const contentType = request.headers['content-type'] ?? 'application/octet-stream'
    reply.from(path, { ...forwarding, body: request.body, contentType })
  }

  for (const url of PROXIED_PATHS) fastify.route({ method: [...PROXIED_METHODS], url, handler: proxy })
}
