import { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { TokenBucket } from '../../util/token-bucket.js'
import type { HedgeDelay } from './hedge-delay.js'
import type { RetryThrottle } from './retry-throttle.js'

/** Methods that RFC 9110 defines as idempotent, minus TRACE (never worth a second attempt). */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])

/** An explicit `idempotent` wins (say, a POST carrying an idempotency key); otherwise the method decides. */
export function isIdempotent (opts: Pick<Dispatcher.DispatchOptions, 'method' | 'idempotent'>): boolean {
  return opts.idempotent ?? IDEMPOTENT_METHODS.has(opts.method)
}

/**
 * Whether the body can be sent a second time. Strings and bytes always can; a stream only if nothing
 * read it yet (a connection refused before the first byte). Iterables and FormData could have been
 * partly consumed without a way to tell, so they are never replayed.
 */
export function isReplayableBody (body: unknown): boolean {
  if (body === null || body === undefined || typeof body === 'string') return true
  if (body instanceof Uint8Array || body instanceof ArrayBuffer || body instanceof Blob) return true
  const stream = body as { pipe?: unknown, destroyed?: boolean }
  if (typeof stream.pipe === 'function') return stream.destroyed !== true && !Readable.isDisturbed(body as Readable)
  return false
}

export interface RetryBudgetOptions {
  /** Retries allowed per request sent, as a fraction: 0.2 means retries add at most 20 % load. */
  ratio: number
  /** Retries allowed per second regardless of traffic, so a quiet caller can still retry. */
  minPerSecond: number
  /** The most retries that can be saved up. */
  burst: number
}

/**
 * Finagle's retry budget as a token bucket: every request deposits `ratio` tokens, time deposits
 * `minPerSecond`, a retry spends one. When an outage makes every request fail, retries stop
 * multiplying the load once the bucket is empty.
 */
export class RetryBudget {
  readonly #ratio: number
  readonly #bucket: TokenBucket

  constructor (opts: RetryBudgetOptions, now?: () => number) {
    this.#ratio = opts.ratio
    this.#bucket = new TokenBucket({ perSecond: opts.minPerSecond, burst: opts.burst, now })
  }

  get available (): number {
    return this.#bucket.tokens
  }

  onRequest (): void {
    this.#bucket.deposit(this.#ratio)
  }

  tryRetry (): boolean {
    return this.#bucket.tryTake()
  }
}

/** How a dispatcher retries: fixed for its life. */
export interface RetryPolicy {
  /** The Consul service, for spans. */
  readonly service: string
  readonly maxRetries: number
  readonly budget: RetryBudget
  /** Answers that send an idempotent request to another instance instead of to the caller. */
  readonly retryOn: ReadonlySet<number>
  /** Per-try timeout of idempotent requests, in ms; 0 for none. */
  readonly perTryTimeout: number
  /** gRPC's throttle: no retry or hedge while most attempts fail; undefined for none. */
  readonly throttle: RetryThrottle | undefined
  /** After how long an idempotent request is hedged; undefined for never. */
  readonly hedge: HedgeDelay | undefined
  /** The dispatcher's deadline for every request, in ms; 0 for none (a request's own or inherited one still holds). */
  readonly deadlineMs: number
  /** Milliseconds clock the loads are stamped with. */
  now (): number
  /** The error for a request that finds no instance at all. */
  noInstance (): Error
  /** The error for a request given up before any answer: `cause` is its last try's, `instances` the IDs tried. */
  gaveUp (cause: Error, instances: readonly string[]): Error
  /** The error for a request whose deadline (`ms` in all) passed before its answer. */
  expired (ms: number): Error
}

/**
 * How a request ended, as the caller saw it: an answer below 500 (`success`, upgrades included) or from
 * 500 up (`server_error`), no answer at all (`failed`: every attempt failed, or the retries ran out),
 * no instance to send it to (`no_instance`), the caller gave up (`aborted`), or its deadline passed
 * (`deadline_exceeded`). A fixed set, so it can be a metric label.
 */
export type RequestOutcome = 'success' | 'server_error' | 'failed' | 'no_instance' | 'aborted' | 'deadline_exceeded'
