import autocannon from 'autocannon'

export interface LoadResult {
  requestsPerSecond: number
  /** Connection errors, timeouts included (autocannon already counts them in `errors`). */
  errors: number
  non2xx: number
  /** Requests sent. */
  total: number
}

/** A bounded autocannon run (duration in seconds) against one URL; loopback only. */
export async function load (url: string, seconds: number, connections = 50): Promise<LoadResult> {
  const result = await autocannon({ url, connections, duration: seconds, pipelining: 1 })
  return {
    requestsPerSecond: result.requests.average,
    errors: result.errors,
    non2xx: result.non2xx,
    total: result.requests.sent
  }
}
