import type { ServerOptions as HttpsServerOptions } from 'node:https'
import closeWithGrace from 'close-with-grace'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { openAdminListener, type AdminListener, type AdminListenerHandle } from './admin-listener.js'
import type { ServerConfig } from './environment.js'

// The process around an app (the fastify/demo split): environment, logger, server timeouts, listen and
// shutdown live here and only here; each app's app.ts stays a plugin that tests build and inject, and its
// server.ts says only what differs (which plugin, which options, how it leaves).

// Longer than the idle timeout of any proxy or load balancer in front of us (AWS ALB: 60 s), so it, not
// we, closes idle keep-alive sockets and never sends a request down one we are closing. undici (the
// gateway's dispatcher) reads our Keep-Alive: timeout=72 header and lets go before that.
export const KEEP_ALIVE_TIMEOUT = 72_000
// A whole request (headers and body) must arrive within this: a slow-loris client cannot hold a socket.
// Longer than the gateway's upstream timeout (10 s), so a slow upstream is answered with a 504, not a dropped socket.
export const REQUEST_TIMEOUT = 30_000
// An open socket that sends nothing at all for this long is dropped.
export const CONNECTION_TIMEOUT = 30_000
// Hard limit on a graceful shutdown; close-with-grace exits 1 when it is reached.
export const SHUTDOWN_TIMEOUT = 10_000

/**
 * What an app may need before its server exists: TLS options for `Fastify({ https })` (Fastify creates
 * its server before any plugin runs) and what to release if the start fails before the app owns it.
 * `@reg/fastify-consul`'s `connectNative()` handle is one.
 */
export interface Prepared {
  readonly https?: HttpsServerOptions
  /** Releases what `prepare` started when the start fails. Must be idempotent: the app may own it by then. */
  close? (): Promise<void>
}

export interface ServeOptions<C extends ServerConfig, P extends Prepared | undefined = undefined> {
  /** The app's name, which starts the one stderr line of a bad environment. */
  name: string
  /** Reads and validates the environment; throws an error naming every bad variable. */
  loadConfig: (env: NodeJS.ProcessEnv) => C
  /**
   * Runs once the admin port is bound and before the app's server is built (a rejection is a failed
   * start). Its `https` makes the public port serve TLS; the admin port stays plain HTTP.
   */
  prepare?: (config: C, log: FastifyBaseLogger) => Promise<P>
  /**
   * Registers the app on the server built here. `admin` is the admin listener, already bound: the app
   * registers its admin routes on `admin.server` and advertises `admin.port`.
   */
  register: (app: FastifyInstance, config: C, admin: AdminListener, prepared: P) => void
  /** Runs once the server listens: what the app wants to say about itself. */
  started?: (app: FastifyInstance, config: C) => void
  /**
   * How the process leaves on SIGINT/SIGTERM. Default `app.close()`. The apps pass @reg/fastify-consul's
   * `shutdown()`: stop advertising, wait until Consul's healthy view has dropped the instance, then close.
   */
  shutdown?: (app: FastifyInstance) => Promise<void>
}

/**
 * Starts the app as a process: reads the environment (a bad one is one plain line on stderr and exit 1),
 * binds the admin listener (ADMIN_HOST:ADMIN_PORT), runs `prepare`, builds and listens (a failed start,
 * such as a port in use, an invalid plugin option or an agent that gave no certificate, is logged at
 * fatal and exits 1), and shuts down gracefully on a signal (exit 0, or 1 after {@link SHUTDOWN_TIMEOUT}).
 * The admin listener closes with the app, last: it keeps answering /health and /metrics while the app
 * drains.
 */
export async function serve<C extends ServerConfig, P extends Prepared | undefined = undefined> (options: ServeOptions<C, P>): Promise<void> {
  let config: C
  try {
    config = options.loadConfig(process.env)
  } catch (err) {
    // No logger yet, and a person is usually reading: one plain line.
    process.stderr.write(`${options.name}: ${(err as Error).message}\n`)
    process.exitCode = 1
    return
  }

  // One logger for both listeners, built here because the admin port and `prepare` come before the app.
  const log: FastifyBaseLogger = pino({
    level: config.logLevel,
    // Tokens never reach the logs, whichever header a caller used.
    redact: ['req.headers.authorization', 'req.headers["x-consul-token"]']
  })
  const timeouts = { keepAliveTimeout: KEEP_ALIVE_TIMEOUT, requestTimeout: REQUEST_TIMEOUT, connectionTimeout: CONNECTION_TIMEOUT }

  let admin: AdminListenerHandle
  let prepared: P
  try {
    admin = await openAdminListener({ port: config.adminPort, host: config.adminHost, logger: log, timeouts })
  } catch (err) {
    log.fatal({ err, listener: 'admin' }, 'could not start')
    process.exitCode = 1
    return
  }
  try {
    prepared = options.prepare === undefined ? undefined as P : await options.prepare(config, log)
  } catch (err) {
    log.fatal({ err }, 'could not start')
    await admin.close()
    process.exitCode = 1
    return
  }

  // With `https` (Connect-native mTLS, say) Fastify's instance is typed for an https.Server; the app
  // plugins only use what both server types share.
  const app = Fastify({ loggerInstance: log, ...timeouts, ...(prepared?.https !== undefined && { https: prepared.https }) }) as unknown as FastifyInstance
  // Last in the close sequence: /health and /metrics stay readable on the admin port while the app drains.
  app.addHook('onClose', () => admin.close())
  options.register(app, config, admin, prepared)

  try {
    await app.ready()
    await admin.start()
    // Fastify logs "Server listening at <url>" itself.
    await app.listen({ port: config.port, host: config.host })
  } catch (err) {
    // A port in use, an unreadable file, invalid plugin options: nothing to drain, just report and leave.
    log.fatal({ err }, 'could not start')
    await app.close()
    // The app may have failed before it took `prepared` over; its keepers would hold the process open.
    await prepared?.close?.()
    process.exitCode = 1
    return
  }
  options.started?.(app, config)

  const shutdown = options.shutdown ?? (async (app: FastifyInstance) => { await app.close() })
  // close-with-grace exits 0 once the callback resolves, 1 on an uncaught error or after SHUTDOWN_TIMEOUT.
  closeWithGrace({ delay: SHUTDOWN_TIMEOUT, logger: app.log }, async ({ signal, err }) => {
    /* c8 ignore start -- nothing outside the process can make the server throw, and a test-only trigger does not belong in it */
    if (err !== undefined) app.log.error({ err }, 'uncaught error: shutting down')
    /* c8 ignore stop */
    app.log.info({ signal }, 'shutting down')
    await shutdown(app)
  })
}
