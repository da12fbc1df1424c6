import { fastifySSE } from '@fastify/sse'
import type { Instance, ServiceDispatcher, ServiceWatch } from '@reg/fastify-consul'
import type { FastifyPluginAsync, onRequestHookHandler } from 'fastify'
import { allowedHosts } from './dashboard-host.js'
import { DASHBOARD_PAGE, DASHBOARD_SCRIPT, DASHBOARD_STYLE } from './dashboard-page.js'
import { RequestWindow, snapshot } from './dashboard-snapshot.js'
import { EventStreams, type StreamLimits } from './dashboard-streams.js'
import { TooManyStreamsError } from './errors.js'

// The gateway's live view of its upstream: GET / (one HTML page, its script and its style) and GET
// /events (Server-Sent Events, a snapshot every second and on every change). Mounted under /_gateway by
// app.ts, and only when asked: it shows internal addresses, and Consul's values in it are user input.
// Not wrapped in fastify-plugin, so @fastify/sse and the hooks below stay in this scope.

export interface DashboardOptions extends StreamLimits {
  dispatcher: ServiceDispatcher
  watch: ServiceWatch
  /** Host names the view answers to besides loopback ones. */
  allowedHosts: readonly string[]
}

/** How often a snapshot is sent when nothing changed. */
export const TICK_MS = 1000

/**
 * On every answer of the view, errors included. The page loads only its own script, style and event
 * stream (no inline script, so an injected one would not run), cannot be framed (clickjacking), is
 * never sniffed into another type, and does not leak its URL to links.
 */
const securityHeaders: onRequestHookHandler = function securityHeaders (_request, reply, done) {
  reply.headers({
    'content-security-policy': "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer'
  })
  done()
}

export const dashboardRoutes: FastifyPluginAsync<DashboardOptions> = async function dashboardRoutes (fastify, opts) {
  const { dispatcher, watch } = opts
  fastify.addHook('onRequest', securityHeaders)
  fastify.addHook('onRequest', allowedHosts(opts.allowedHosts))
  await fastify.register(fastifySSE, { heartbeatInterval: 15_000 })

  // Which instance answered each request, for the share column. Only while the view is mounted.
  const window = new RequestWindow()
  const onRequest = (instance: Instance | undefined): void => { window.add(instance, Date.now()) }
  dispatcher.events.on('request', onRequest)

  const log = fastify.log.child({ plugin: '@reg/gateway', route: 'live view' })
  const streams = new EventStreams(opts, () => log.info('live view client dropped: it stopped reading its event stream'))
  /** One serialisation per snapshot, whatever the number of viewers. */
  const frame = (): Buffer => Buffer.from(`event: snapshot\ndata: ${JSON.stringify(snapshot(watch, dispatcher, window, Date.now()))}\n\n`)
  const broadcast = (): void => {
    if (streams.size > 0) streams.send(frame())
  }
  // One listener per event for every viewer, and one timer: setTimeout + refresh, not setInterval.
  const changes = ['change', 'state', 'panic'] as const
  for (const event of changes) watch.on(event as 'change', broadcast)
  dispatcher.events.on('eject', broadcast)
  dispatcher.events.on('probe', broadcast)
  dispatcher.events.on('readmit', broadcast)
  const timer = setTimeout(() => {
    broadcast()
    timer.refresh()
  }, TICK_MS)
  timer.unref()
  fastify.addHook('preClose', async () => {
    clearTimeout(timer)
    for (const event of changes) watch.off(event as 'change', broadcast)
    dispatcher.events.off('eject', broadcast)
    dispatcher.events.off('probe', broadcast)
    dispatcher.events.off('readmit', broadcast)
    dispatcher.events.off('request', onRequest)
    streams.endAll()
  })

  fastify.get('/', async (request, reply) => {
    // The page's URLs are relative (events, live-view.js): under /_gateway without the slash they would
    // resolve to /events. Fastify serves both forms here; the bare one is sent to the other.
    // (The target is fixed, never taken from the request: no open redirect.)
    if (!request.url.split('?', 1)[0]!.endsWith('/')) return await reply.redirect(`${fastify.prefix}/`, 308)
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-store')
    return DASHBOARD_PAGE
  })
  fastify.get('/live-view.js', async (_request, reply) => {
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-store')
    return DASHBOARD_SCRIPT
  })
  fastify.get('/live-view.css', async (_request, reply) => {
    reply.type('text/css; charset=utf-8').header('cache-control', 'no-store')
    return DASHBOARD_STYLE
  })

  fastify.get('/events', { sse: 'only' }, async (_request, reply) => {
    // Before anything is written: the error is then an ordinary coded JSON answer.
    if (streams.full) throw new TooManyStreamsError(opts.maxStreams)
    reply.sse.keepAlive()
    reply.sse.sendHeaders()
    streams.add(reply.raw)
    streams.send(frame(), [reply.raw])
  })
}
