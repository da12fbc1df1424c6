import { context, propagation, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { startConsul } from '@reg/testkit'
import t from 'tap'
import { buildGateway } from './fixtures/app.js'
import { fakeUpstream } from './fixtures/consul.js'

// #23 through the gateway: a client's traceparent and deadline reach the upstream, one hop further. The
// app installs an OpenTelemetry SDK here (the in-memory exporter); the sample ships without one, and
// then the client's traceparent passes through unchanged (reply-from forwards it, and the API injects
// nothing).

const exporter = new InMemorySpanExporter()
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
propagation.setGlobalPropagator(new W3CTraceContextPropagator())

const agent = await startConsul({ t })
const consul = { address: agent.address }

t.test('a client\'s traceparent is continued to the upstream, under the gateway\'s span for the try that reached it', async (t) => {
  await fakeUpstream(t, agent.url, 'echo', (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-instance-id': 'echo-1' })
    res.end(JSON.stringify({ traceparent: req.headers.traceparent, budget: req.headers['x-envoy-expected-rq-timeout-ms'] ?? null }))
  })
  const app = await buildGateway(t, { upstream: 'echo', consul })
  const client = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
  const res = await app.inject({ url: '/users', headers: { traceparent: client, 'x-envoy-expected-rq-timeout-ms': '500' } })
  t.equal(res.statusCode, 200)
  const seen = res.json<{ traceparent: string, budget: string | null }>()
  const [, traceId, spanId] = seen.traceparent.split('-')
  t.equal(traceId, '4bf92f3577b34da6a3ce929d0e0e4736', 'the upstream is in the client\'s trace')
  const spans = exporter.getFinishedSpans()
  const tryToUpstream = spans.find((s) => s.spanContext().spanId === spanId)
  t.ok(tryToUpstream, 'the traceparent names a span the gateway recorded: the try')
  t.equal(tryToUpstream!.attributes['reg.instance.id'], 'echo-1')
  const request = spans.find((s) => s.spanContext().spanId === tryToUpstream!.parentSpanContext?.spanId)
  t.equal(request?.parentSpanContext?.spanId, '00f067aa0ba902b7', 'whose request span hangs under the client\'s span')
  t.ok(Number(seen.budget) > 0 && Number(seen.budget) <= 500, `the client's 500 ms budget travelled on, less what the gateway spent (${seen.budget})`)
})
