import { fastifySSE } from '@fastify/sse'
import type { Instance, ServiceDispatcher, ServiceWatch } from '@reg/fastify-consul'
import type { FastifyPluginAsync } from 'fastify'
import { DASHBOARD_PAGE } from './dashboard-page.js'
import { RequestWindow, snapshot } from './dashboard-snapshot.js'

// The gateway's live view of its upstream: GET / (one HTML page) and GET /events (Server-Sent Events, a
// snapshot every second and on every change). Mounted under /_gateway by app.ts, and only when asked:
// it shows internal addresses. Not wrapped in fastify-plugin, so @fastify/sse stays in this scope.

export interface DashboardOptions {
  dispatcher: ServiceDispatcher
  watch: ServiceWatch
}

/** How often a snapshot is sent when nothing changed. */
export const TICK_MS = 1000

export const dashboardRoutes: FastifyPluginAsync<DashboardOptions> = async function dashboardRoutes (fastify, { dispatcher, watch }) {
  await fastify.register(fastifySSE, { heartbeatInterval: 15_000 })

  // Which instance answered each request, for the share column. Only while the view is mounted.
  const window = new RequestWindow()
  const onRequest = (instance: Instance | undefined): void => { window.add(instance, Date.now()) }
  dispatcher.events.on('request', onRequest)

  const streams = new Set<() => void>()
  fastify.addHook('preClose', async () => {
    // An event stream never ends on its own; close() would wait for it forever.
    for (const close of [...streams]) close()
    dispatcher.events.off('request', onRequest)
  })

  fastify.get('/', async (_request, reply) => {
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-store')
    return DASHBOARD_PAGE
  })

  fastify.get('/events', { sse: 'only' }, async (_request, reply) => {
    reply.sse.keepAlive()
    const send = (): void => {
      reply.sse.send({ event: 'snapshot', data: snapshot(watch, dispatcher, window, Date.now()) }).catch(() => {})
    }
    // setTimeout + refresh, not setInterval: a slow client cannot make sends pile up.
    const timer = setTimeout(() => {
      send()
      timer.refresh()
    }, TICK_MS)
    timer.unref()
    const changes = ['change', 'state', 'panic'] as const
    for (const event of changes) watch.on(event as 'change', send)
    dispatcher.events.on('eject', send)
    dispatcher.events.on('readmit', send)
    const stop = (): void => {
      clearTimeout(timer)
      for (const event of changes) watch.off(event as 'change', send)
      dispatcher.events.off('eject', send)
      dispatcher.events.off('readmit', send)
      streams.delete(close)
    }
    const close = (): void => {
      stop()
      reply.sse.close()
    }
    streams.add(close)
    reply.sse.onClose(stop)
    send()
  })
}
