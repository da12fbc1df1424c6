/** gRPC's retry throttling, per dispatcher. */
export interface RetryThrottleOptions {
  /** The bucket's size; retries and hedges stop at or below half of it. */
  maxTokens: number
  /** What a successful attempt puts back (a failed one takes 1). */
  tokenRatio: number
}

/**
 * gRPC's retry throttling (A6): each failed answer (5xx or a `retryOn` status) takes a token, each
 * success puts back `tokenRatio`,
 * and while the bucket is at or below half full no retry or hedge is sent. The retry budget bounds
 * retries by the traffic; this stops them within a handful of failures when nearly everything fails
 * (a whole fleet answering 503), whatever budget was saved up, and lets them resume as soon as
 * successes outnumber failures again. With `tokenRatio` 1 that is when more than half of the attempts
 * succeed, so a partial recovery (2 of 3 replicas back) gets its retries at once; gRPC's usual 0.1
 * would wait for 10 successes per failure.
 */
export class RetryThrottle {
  readonly #max: number
  readonly #ratio: number
  #tokens: number

  constructor (opts: RetryThrottleOptions) {
    this.#max = opts.maxTokens
    this.#ratio = opts.tokenRatio
    this.#tokens = opts.maxTokens
  }

  get tokens (): number {
    return this.#tokens
  }

  /** Whether a retry or hedge may be sent now. */
  get open (): boolean {
    return this.#tokens > this.#max / 2
  }

  failed (): void {
    this.#tokens = Math.max(0, this.#tokens - 1)
  }

  succeeded (): void {
    this.#tokens = Math.min(this.#max, this.#tokens + this.#ratio)
  }
}
