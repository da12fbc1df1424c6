import { context, propagation, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api'

// Spans through @opentelemetry/api only, as OpenTelemetry asks of libraries: without an SDK every call
// below is a no-op, and with one each request is a client span with a child per try, named and
// attributed after the HTTP semantic conventions (method as the name, http.request.resend_count).

const tracer = trace.getTracer('@reg/fastify-consul')

/** Why a try was made: the first, a retry and its cause, or a hedge beside a slow try. */
export type TryReason = 'first' | 'error' | 'timeout' | 'status' | 'hedge'

/** The request's span, and what its tries are children of. */
export interface RequestTrace {
  readonly span: Span
  readonly context: Context
}

/** The trace context a request's headers carry (a repeated header is an array, and is not trusted). */
export interface CarriedContext {
  traceparent?: string | string[] | undefined
  tracestate?: string | string[] | undefined
}

/**
 * The request's span, a child of the active span; without one (no HTTP server instrumentation), of the
 * `traceparent` the request already carries, so a proxy that forwards its caller's headers (the sample
 * gateway through reply-from) continues its caller's trace instead of starting a new one.
 */
export function startRequestSpan (service: string, method: string, carried: CarriedContext): RequestTrace {
  let parent = context.active()
  const { traceparent, tracestate } = carried
  if (trace.getSpan(parent) === undefined && typeof traceparent === 'string') {
    parent = propagation.extract(parent, typeof tracestate === 'string' ? { traceparent, tracestate } : { traceparent })
  }
  const span = tracer.startSpan(method, { kind: SpanKind.CLIENT, attributes: { 'http.request.method': method, 'peer.service': service } }, parent)
  return { span, context: trace.setSpan(parent, span) }
}

export interface TryStart {
  method: string
  instanceId: string
  origin: string
  /** 0 for the first try; the HTTP conventions' resend count for the others. */
  resendCount: number
  reason: TryReason
}

/** A try's span, and the headers that carry its context downstream (traceparent with an SDK; none without). */
export function startTrySpan (request: RequestTrace, t: TryStart): { span: Span, headers: Record<string, string> } {
  const span = tracer.startSpan(t.method, { kind: SpanKind.CLIENT }, request.context)
  // Without an SDK the span records nothing: skip parsing the origin on every try.
  if (span.isRecording()) {
    const url = new URL(t.origin)
    span.setAttributes({
      'http.request.method': t.method,
      'server.address': url.hostname,
      'server.port': Number(url.port),
      'reg.instance.id': t.instanceId,
      'reg.try.reason': t.reason
    })
    if (t.resendCount > 0) span.setAttribute('http.request.resend_count', t.resendCount)
  }
  const headers: Record<string, string> = {}
  propagation.inject(trace.setSpan(request.context, span), headers)
  return { span, headers }
}

/** Ends a try's (or the request's) span: an answer with its status, or the error's code as error.type. */
export function endSpan (span: Span, end: { status: number } | { error: Error } | { outcome: string }): void {
  if ('status' in end) {
    span.setAttribute('http.response.status_code', end.status)
    if (end.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
  } else if ('error' in end) {
    span.setAttribute('error.type', (end.error as Error & { code?: string }).code ?? end.error.name)
    span.setStatus({ code: SpanStatusCode.ERROR, message: end.error.message })
  } else {
    span.setAttribute('reg.try.outcome', end.outcome)
  }
  span.end()
}
