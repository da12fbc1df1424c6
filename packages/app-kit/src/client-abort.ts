import type { onRequestHookHandler } from 'fastify'

/**
 * A client that hangs up before its response is complete (mid-body, or while waiting) made a choice; it
 * is not a server error. This says so once, at info, with nginx's 499 "client closed request", so that
 * error-level logs and 5xx counts stay about the server. Fastify's own line for the same event (an
 * "aborted" 400, or "stream closed prematurely") is also at info.
 */
export const logClientAbort: onRequestHookHandler = function logClientAbort (request, reply, done) {
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) request.log.info({ statusCode: 499 }, 'client closed the connection before the response was complete')
  })
  done()
}
