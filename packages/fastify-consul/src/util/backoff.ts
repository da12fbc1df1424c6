export interface BackoffOptions {
  /** First delay ceiling in ms. */
  base: number
  /** Largest delay ceiling in ms. */
  cap: number
}

/**
 * "Full jitter" exponential backoff (AWS architecture blog): a uniform delay in [0, min(cap, base·2^n)).
 * Spreading retries uniformly keeps a fleet that lost Consul at the same moment from returning in
 * lock-step when it comes back.
 */
export function fullJitter (attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.cap, opts.base * 2 ** Math.min(attempt, 30))
  return Math.floor(random() * ceiling)
}

/** "Equal jitter" at the cap: uniform in [cap/2, cap), the slow pace for refusals. */
export function slowJitter (retry: { cap: number }, random: () => number = Math.random): number {
  return Math.floor(retry.cap / 2 + random() * retry.cap / 2)
}
