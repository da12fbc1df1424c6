import type { IncomingHttpHeaders } from 'node:http'
import { context, propagation, SpanKind, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import t from 'tap'
import { request } from 'undici'
import { BalancedDispatcher } from '../src/discovery/dispatch/dispatcher.js'
import { dispatchSettings, type DispatchOptions } from '../src/discovery/options.js'
import { deadPort, upstream, type Upstream } from './fixtures/discovery-consul.js'
import { recordingLogger } from './fixtures/discovery-logger.js'
import { StaticWatch, instanceAt } from './fixtures/discovery-static-watch.js'

// #23: a span per try, through @opentelemetry/api only, checked with the SDK's in-memory exporter (this
// file's process registers the SDK; every other test runs with the API's no-op).

const exporter = new InMemorySpanExporter()
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
propagation.setGlobalPropagator(new W3CTraceContextPropagator())

interface Teardown { teardown (fn: () => unknown): void }

async function recording (t: Teardown, id: string, hang = false): Promise<Upstream & { headers: IncomingHttpHeaders[] }> {
  const headers: IncomingHttpHeaders[] = []
  const u = await upstream(t, id, (req, res) => {
    headers.push(req.headers)
    if (!hang) res.end(JSON.stringify({ id }))
  })
  t.teardown(() => u.server.closeAllConnections())
  return Object.assign(u, { headers })
}

function dispatcherFor (t: Teardown, ports: ReadonlyArray<[string, number]>, opts: DispatchOptions = {}): BalancedDispatcher {
  const d = new BalancedDispatcher({ ...dispatchSettings({ balancer: 'round-robin', ...opts }), watch: new StaticWatch(ports.map(([id, port]) => instanceAt(id, port))), log: recordingLogger().log, random: () => 0 })
  t.teardown(() => d.close())
  return d
}

t.beforeEach(() => exporter.reset())

t.test('a request is a client span with a child per try: the failed first, the retry with its resend count', async (t) => {
  const good = await recording(t, 'good')
  const d = dispatcherFor(t, [['dead', await deadPort(t)], ['good', good.port]])
  const parent = trace.getTracer('test').startSpan('incoming')
  const res = await context.with(trace.setSpan(context.active(), parent), async () => await request('http://svc/', { dispatcher: d }))
  await res.body.text()
  parent.end()
  const spans = exporter.getFinishedSpans().filter((s) => s.name === 'GET')
  // Told apart by attributes: a try can start in the same microsecond as its request.
  const requestSpan = spans.find((s) => 'peer.service' in s.attributes)
  const tries = spans.filter((s) => s !== requestSpan).sort((a, b) => Number(a.attributes['http.request.resend_count'] ?? 0) - Number(b.attributes['http.request.resend_count'] ?? 0))
  t.equal(spans.length, 3, 'one request span and two tries')
  t.equal(requestSpan!.kind, SpanKind.CLIENT)
  t.equal(requestSpan!.parentSpanContext?.spanId, parent.spanContext().spanId, 'the request span is a child of the active span')
  t.match(requestSpan!.attributes, { 'http.request.method': 'GET', 'peer.service': 'svc', 'http.response.status_code': 200 })
  for (const s of tries) t.equal(s.parentSpanContext?.spanId, requestSpan!.spanContext().spanId, 'each try is a child of the request span')
  t.match(tries[0]!.attributes, { 'reg.instance.id': 'dead', 'reg.try.reason': 'first', 'error.type': 'ECONNREFUSED', 'server.address': '127.0.0.1' })
  t.notOk('http.request.resend_count' in tries[0]!.attributes, 'the first try has no resend count')
  t.match(tries[1]!.attributes, { 'reg.instance.id': 'good', 'reg.try.reason': 'error', 'http.request.resend_count': 1, 'http.response.status_code': 200, 'server.port': good.port })
  const traceparent = good.headers[0]!.traceparent as string
  t.equal(traceparent.split('-')[2], tries[1]!.spanContext().spanId, 'the instance got traceparent naming the try that reached it')
  t.equal(traceparent.split('-')[1], parent.spanContext().traceId, 'in the caller\'s trace')
})

t.test('a hedge is a try of its own; the slow try it beat ends as lost', async (t) => {
  const slow = await recording(t, 'slow', true)
  const fast = await recording(t, 'fast')
  const d = dispatcherFor(t, [['slow', slow.port], ['fast', fast.port]], { hedge: { delay: 20 } })
  await (await request('http://svc/', { dispatcher: d })).body.text()
  await new Promise((resolve) => setTimeout(resolve, 20))
  const spans = exporter.getFinishedSpans()
  const first = spans.find((s) => s.attributes['reg.instance.id'] === 'slow')
  const hedge = spans.find((s) => s.attributes['reg.instance.id'] === 'fast')
  t.match(first!.attributes, { 'reg.instance.id': 'slow', 'reg.try.outcome': 'lost' })
  t.match(hedge!.attributes, { 'reg.instance.id': 'fast', 'reg.try.reason': 'hedge', 'http.request.resend_count': 1, 'http.response.status_code': 200 })
})

t.test('a deadline that passes ends the request span with the coded error', async (t) => {
  const hung = await recording(t, 'hung', true)
  const d = dispatcherFor(t, [['hung', hung.port]], { deadline: 50 })
  await t.rejects(request('http://svc/', { dispatcher: d }), { code: 'FST_REG_DISCOVERY_DEADLINE_EXCEEDED' })
  await new Promise((resolve) => setTimeout(resolve, 20))
  const requestSpan = exporter.getFinishedSpans().find((s) => 'peer.service' in s.attributes)
  const only = exporter.getFinishedSpans().find((s) => 'reg.instance.id' in s.attributes)
  t.match(requestSpan!.attributes, { 'error.type': 'FST_REG_DISCOVERY_DEADLINE_EXCEEDED' })
  t.match(only!.attributes, { 'error.type': 'FST_REG_DISCOVERY_DEADLINE_EXCEEDED' })
  t.equal(requestSpan!.status.code, 2, 'status ERROR')
})

t.test('without an active span, a forwarded traceparent is the parent: a proxy continues its caller\'s trace', async (t) => {
  const good = await recording(t, 'good')
  const d = dispatcherFor(t, [['good', good.port]])
  const caller = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
  await (await request('http://svc/', { dispatcher: d, headers: { traceparent: caller, tracestate: 'k=v' } })).body.text()
  const requestSpan = exporter.getFinishedSpans().find((s) => s.attributes['peer.service'] === 'svc')!
  t.equal(requestSpan.spanContext().traceId, '0af7651916cd43dd8448eb211c80319c', 'the caller\'s trace')
  t.equal(requestSpan.parentSpanContext?.spanId, 'b7ad6b7169203331', 'under the caller\'s span')
  const sent = good.headers[0]!
  t.not(sent.traceparent, caller, 'the instance got the try\'s own traceparent, not a duplicate of the caller\'s')
  t.match(sent.traceparent, /^00-0af7651916cd43dd8448eb211c80319c-/)
  t.equal(sent.tracestate, 'k=v', 'tracestate travels on')
  exporter.reset()
  await (await request('http://svc/', { dispatcher: d, headers: { traceparent: caller } })).body.text()
  t.equal(exporter.getFinishedSpans().find((s) => s.attributes['peer.service'] === 'svc')!.parentSpanContext?.spanId, 'b7ad6b7169203331', 'without tracestate too')
  // Negative control: with an active span the forwarded header is not used as the parent.
  exporter.reset()
  const active = trace.getTracer('test').startSpan('incoming')
  await context.with(trace.setSpan(context.active(), active), async () => { await (await request('http://svc/', { dispatcher: d, headers: { traceparent: caller } })).body.text() })
  active.end()
  const inside = exporter.getFinishedSpans().find((s) => s.attributes['peer.service'] === 'svc')!
  t.equal(inside.parentSpanContext?.spanId, active.spanContext().spanId)
})
