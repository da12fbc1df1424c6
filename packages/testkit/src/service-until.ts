/** One entry of `GET /v1/health/service/:name`, as far as tests read it. */
export interface HealthEntry {
  Service: { ID: string, Service: string, Address: string, Port: number }
  Checks: Array<{ CheckID: string, Status: string }>
}

export interface ServiceUntilOptions {
  /** Only instances whose checks all pass (`?passing`). Default false. */
  passing?: boolean
  /** Give up after this many ms with an error naming the service. Default 60 s. */
  timeoutMs?: number
  /** Stops waiting at once, rejecting with the signal's reason (e.g. the process that should register has died). */
  signal?: AbortSignal
}

/**
 * Resolves with `/v1/health/service/:name` once `predicate` holds, using blocking queries: each request
 * returns as soon as the service's health changes, so there is neither a sleep nor a busy poll.
 * Bounded, so a test whose service never appears fails instead of hanging.
 */
export async function serviceUntil (consulUrl: string, name: string, predicate: (entries: HealthEntry[]) => boolean, opts: ServiceUntilOptions = {}): Promise<HealthEntry[]> {
  const timeoutMs = opts.timeoutMs ?? 60_000
  const deadline = Date.now() + timeoutMs
  let index = 0
  while (Date.now() < deadline) {
    opts.signal?.throwIfAborted()
    // Never block past the deadline.
    const wait = Math.max(1, Math.min(5, Math.floor((deadline - Date.now()) / 1000)))
    const query = new URLSearchParams({ index: String(index), wait: `${wait}s` })
    if (opts.passing) query.set('passing', '')
    const res = await fetch(`${consulUrl}/v1/health/service/${encodeURIComponent(name)}?${query}`, { signal: opts.signal })
    const entries = await res.json() as HealthEntry[]
    if (predicate(entries)) return entries
    const next = Number(res.headers.get('x-consul-index'))
    // Consul's rule: an index that goes backwards starts over.
    /* c8 ignore next -- needs an index that went back mid-wait; the rule itself is tested in the watcher */
    index = next < index ? 0 : next
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${name} in Consul`)
}
