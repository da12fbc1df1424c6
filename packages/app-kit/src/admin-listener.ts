import { once } from 'node:events'
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'

// The admin listener (issue #24, item 7): a second, plain-HTTP port for what operators read and the
// public must not (/metrics, the detailed /health, the gateway's live view), bound to loopback by default
// like Envoy's and Linkerd's admin ports.
//
// Why its socket is bound before the app is built: the app registers the admin port in Consul (meta
// `metrics_port`, which Prometheus' consul_sd relabels to), and the registration is fixed when the app
// plugin is registered, long before the app's own routes exist. Binding first gives the real port even
// for ADMIN_PORT=0, and a port already in use fails the start before anything is registered. The
// admin Fastify instance is then built on that socket (Fastify's `serverFactory`); until it is ready,
// every request gets a 503, never an unready router.

/**
 * The service meta that tells Prometheus where `/metrics` is: the admin port, not the registered one
 * (deploy/prometheus.yml relabels the scrape address to it; apps/gateway/test/scrape.test.ts proves it).
 */
export const METRICS_PORT_META = 'metrics_port'

export interface AdminListener {
  /** The admin Fastify instance: the app registers its admin routes here before `start()`. */
  readonly server: FastifyInstance
  /** The bound port (ADMIN_PORT, or the OS's pick for 0). */
  readonly port: number
}

export interface AdminListenerHandle extends AdminListener {
  /** Readies the admin instance and hands it the socket's requests. */
  start (): Promise<void>
  /** Closes the admin instance (its preClose ends event streams), then the socket. Idempotent. */
  close (): Promise<void>
}

export interface AdminListenerOptions {
  port: number
  host: string
  /** The app's logger; the admin's lines carry `listener: 'admin'`. */
  logger: FastifyBaseLogger
  /** The same server timeouts as the public port's (see serve.ts). */
  timeouts: { keepAliveTimeout: number, requestTimeout: number, connectionTimeout: number }
}

const STARTING_BODY = JSON.stringify({ statusCode: 503, error: 'Service Unavailable', message: 'starting' })

/** Answers a request that arrives between the bind and the admin instance's ready(). */
function starting (_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '1' })
  res.end(STARTING_BODY)
}

/** Binds the admin socket now; rejects as `listen` does (EADDRINUSE, EADDRNOTAVAIL, …). */
export async function openAdminListener (opts: AdminListenerOptions): Promise<AdminListenerHandle> {
  const { keepAliveTimeout, requestTimeout, connectionTimeout } = opts.timeouts
  let route: RequestListener = starting
  const socket = createServer({ keepAliveTimeout, requestTimeout }, (req, res) => route(req, res))
  socket.setTimeout(connectionTimeout)
  socket.listen(opts.port, opts.host)
  await Promise.race([
    once(socket, 'listening'),
    once(socket, 'error').then(([err]) => { throw err })
  ])
  const port = (socket.address() as AddressInfo).port

  let handler: RequestListener | undefined
  const server = Fastify({
    loggerInstance: opts.logger.child({ listener: 'admin' }),
    serverFactory (fastifyHandler) {
      handler = fastifyHandler
      return socket
    }
  })

  let closing: Promise<void> | undefined
  async function close (): Promise<void> {
    await server.close()
    // Fastify closes only a server it made listen itself; this one was bound above.
    await new Promise<void>((resolve) => socket.close(() => resolve()))
  }

  return {
    server,
    port,
    async start () {
      await server.ready()
      route = handler as RequestListener
      opts.logger.info({ listener: 'admin', url: `http://${hostForUrl(opts.host)}:${port}` }, 'admin listener ready')
    },
    close: () => (closing ??= close())
  }
}

/** An IPv6 literal goes in brackets in a URL. */
function hostForUrl (host: string): string {
  return host.includes(':') ? `[${host}]` : host
}
