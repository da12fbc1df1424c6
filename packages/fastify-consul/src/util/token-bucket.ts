export interface TokenBucketOptions {
  /** Tokens added per second of elapsed time. */
  perSecond: number
  /** Capacity; the bucket starts full. */
  burst: number
  /** Milliseconds clock; `performance.now` by default. Inject one for deterministic tests. */
  now?: () => number
}

/**
 * A token bucket refilled by time (and optionally by deposits). The watcher uses it as a rate limit on
 * its loop; the retry budget uses it as "retries may add at most this much load".
 */
export class TokenBucket {
  readonly #perMs: number
  readonly #burst: number
  readonly #now: () => number
  #tokens: number
  #last: number

  constructor (opts: TokenBucketOptions) {
    this.#perMs = opts.perSecond / 1000
    this.#burst = opts.burst
    this.#now = opts.now ?? (() => performance.now())
    this.#tokens = opts.burst
    this.#last = this.#now()
  }

  #refill (): void {
    const now = this.#now()
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#perMs)
    this.#last = now
  }

  /** Current tokens (after refill). */
  get tokens (): number {
    this.#refill()
    return this.#tokens
  }

  /** Takes one token when one is available. */
  tryTake (): boolean {
    this.#refill()
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }

  /**
   * Takes one token now, going into debt if needed, and returns how many ms to wait before using it.
   * Callers that always wait the returned time are held to `perSecond` after the initial burst.
   */
  reserve (): number {
    this.#refill()
    this.#tokens -= 1
    return this.#tokens >= 0 ? 0 : Math.ceil(-this.#tokens / this.#perMs)
  }

  /** Adds tokens (up to the capacity) without waiting for time to pass. */
  deposit (amount: number): void {
    this.#refill()
    this.#tokens = Math.min(this.#burst, this.#tokens + amount)
  }
}
