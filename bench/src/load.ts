import type { ConnectionOptions } from 'node:tls'
import autocannon from 'autocannon'

export interface LoadResult {
  requestsPerSecond: number
  /** Connection errors, timeouts included (autocannon already counts them in `errors`). */
  errors: number
  non2xx: number
  /** Requests sent. */
  total: number
}

/**
 * A bounded autocannon run (duration in seconds) against one URL; loopback only. `tls` (an https URL's
 * client certificate and roots) goes to every connection's handshake; autocannon keeps its connections
 * alive, and does not verify the server (its own choice): the server's work is the same either way.
 */
export async function load (url: string, seconds: number, connections = 50, tls?: ConnectionOptions): Promise<LoadResult> {
  const result = await autocannon({ url, connections, duration: seconds, pipelining: 1, ...(tls ? { tlsOptions: tls } : {}) })
  return {
    requestsPerSecond: result.requests.average,
    errors: result.errors,
    non2xx: result.non2xx,
    total: result.requests.sent
  }
}
