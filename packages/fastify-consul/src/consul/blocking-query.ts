// Consul's blocking-query rules, in one place: the watcher, the healthy-view wait and anything else
// that long-polls an endpoint with an index use these, so the rules cannot drift apart.

/** Slack on top of wait + wait/16 (Consul's own jitter) before we call a blocking query lost. */
const TIMEOUT_MARGIN = 2_000

/** Headers must arrive within the wait, Consul's up-to-wait/16 jitter, and a margin for the network. */
export function requestTimeout (wait: number): number {
  return wait + Math.ceil(wait / 16) + TIMEOUT_MARGIN
}

/**
 * The index to send next, per Consul's blocking-query rules: an index that went backwards (a restarted
 * or replaced server) resets to 0 for a fresh, non-blocking read; an index below 1 (a Consul bug on
 * some versions, or a missing header) becomes 1, which is always safe and cannot spin.
 */
export function nextIndex (previous: number, received: number | undefined): number {
  if (received === undefined || !(received >= 1)) return 1
  if (received < previous) return 0
  return received
}

/** The `index` and `wait` query parameters: without an index the query does not block, so no wait. */
export function blockingParams (index: number, waitMs: number): { index: number | undefined, wait: string | undefined } {
  return index > 0 ? { index, wait: `${waitMs}ms` } : { index: undefined, wait: undefined }
}
