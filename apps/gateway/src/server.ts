import closeWithGrace from 'close-with-grace'
import Fastify, { type FastifyInstance } from 'fastify'
import gateway from './app.js'
import { loadConfig, type Config } from './config.js'

// The process around the app (the fastify/demo split): environment, logger, server timeouts, listen and
// shutdown live here and only here; app.ts stays a plugin that tests build and inject.

// Longer than the idle timeout of any proxy or load balancer in front of us (AWS ALB: 60 s), so it, not
// we, closes idle keep-alive sockets and never sends a request down one we are closing.
const KEEP_ALIVE_TIMEOUT = 72_000
// A whole request (headers and body) must arrive within this: a slow-loris client cannot hold a socket.
// Longer than the upstream timeout (10 s), so a slow upstream is answered with a 504, not a dropped socket.
const REQUEST_TIMEOUT = 30_000
// An open socket that sends nothing at all for this long is dropped.
const CONNECTION_TIMEOUT = 30_000
// Hard limit on a graceful shutdown; close-with-grace exits 1 when it is reached.
const SHUTDOWN_TIMEOUT = 10_000

/**
 * How this process leaves: @reg/fastify-consul's shutdown() stops advertising (health drain +
 * deregister), waits until Consul's healthy view has dropped us (plus its drainDelay), then runs
 * close(), which lets proxied requests in flight finish before the upstream pools and the watch close.
 */
async function shutdown (app: FastifyInstance): Promise<void> {
  await app.consul.shutdown()
}

async function main (): Promise<void> {
  let config: Config
  try {
    config = loadConfig(process.env)
  } catch (err) {
    // No logger yet, and a person is usually reading: one plain line.
    process.stderr.write(`gateway: ${(err as Error).message}\n`)
    process.exitCode = 1
    return
  }

  const app = Fastify({
    logger: {
      level: config.logLevel,
      // Tokens never reach the logs, whichever header a caller used.
      redact: ['req.headers.authorization', 'req.headers["x-consul-token"]']
    },
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT,
    requestTimeout: REQUEST_TIMEOUT,
    connectionTimeout: CONNECTION_TIMEOUT
  })
  app.register(gateway, {
    upstream: config.upstream,
    serviceId: config.serviceId,
    pseudonym: config.pseudonym,
    consul: config.consul,
    dashboard: config.dashboard && { allowedHosts: config.dashboardHosts }
  })

  try {
    // Fastify logs "Server listening at <url>" itself.
    await app.listen({ port: config.port, host: config.host })
  } catch (err) {
    // A port in use, invalid Consul options: nothing to drain, just report and leave.
    app.log.fatal({ err }, 'could not start')
    await app.close()
    process.exitCode = 1
    return
  }
  app.log.info({ upstream: config.upstream }, `proxying /users to healthy instances of ${config.upstream}`)
  if (config.dashboard) app.log.info(`live view of ${config.upstream} at /_gateway/`)

  // close-with-grace exits 0 once the callback resolves, 1 on an uncaught error or after SHUTDOWN_TIMEOUT.
  closeWithGrace({ delay: SHUTDOWN_TIMEOUT, logger: app.log }, async ({ signal, err }) => {
    /* c8 ignore start -- nothing outside the process can make the server throw, and a test-only trigger does not belong in it */
    if (err !== undefined) app.log.error({ err }, 'uncaught error: shutting down')
    /* c8 ignore stop */
    app.log.info({ signal }, 'shutting down')
    await shutdown(app)
  })
}

await main()
