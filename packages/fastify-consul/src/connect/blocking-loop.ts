import { blockingParams, nextIndex, requestTimeout } from '../consul/blocking-query.js'
import { httpError, type ConsulHttp } from '../consul/http.js'
import { fullJitter, type BackoffOptions } from '../util/backoff.js'
import { pause } from '../util/pause.js'
import { TokenBucket, type TokenBucketOptions } from '../util/token-bucket.js'

// One long-poll on an indexed endpoint, with the discipline of discovery/watch/watcher.ts: Consul's
// index rules (consul/blocking-query.ts), a rate limit, full-jitter backoff after errors, the index reset
// after any failure (a restarted -dev agent starts over at a low index and a stale one would block for
// a whole wait), and a 1 s cap on the pause while a last good answer is being served, so Consul's return
// is noticed within about a second. Connect needs three of these (leaf, roots, intentions); the
// watcher and the KV reader inline the same loop, and all of them could share this from consul/.

/** Longest pause between two tries while the caller serves a last good answer. */
export const STALE_RETRY_CAP = 1000

export interface BlockingLoopTuning {
  /** Blocking wait in ms (Consul's maximum is 10 minutes). */
  wait: number
  backoff: BackoffOptions
  rateLimit: Pick<TokenBucketOptions, 'perSecond' | 'burst'>
  random?: (() => number) | undefined
}

export interface BlockingLoop<T> extends BlockingLoopTuning {
  http: ConsulHttp
  path: string
  signal: AbortSignal
  /** Turns a 200 body into a value; throws a coded error for a body it cannot use. */
  parse: (text: string) => T
  /** Every good answer, including a wait that ran out with nothing new: dedupe on content, not on calls. */
  answer: (value: T, index: number) => void
  /** Every failed try (network, non-200, parse), with how many failed in a row before it. */
  failure: (err: Error, failures: number) => void
  /** Whether the caller serves a last good answer, which caps the pause at STALE_RETRY_CAP. */
  stale: () => boolean
}

export async function blockingLoop<T> (loop: BlockingLoop<T>): Promise<void> {
  const { http, path, signal, wait, backoff, random } = loop
  const limiter = new TokenBucket(loop.rateLimit)
  const timeout = requestTimeout(wait)
  let index = 0
  let failures = 0
  while (!signal.aborted) {
    // Aborted during the pause: send() below rejects at once and the catch ends the loop.
    await pause(limiter.reserve(), signal)
    try {
      const res = await http.send({ path, query: blockingParams(index, wait), timeout, signal })
      if (res.status !== 200) throw httpError(`GET ${path}`, res)
      const value = loop.parse(res.text)
      index = nextIndex(index, res.index)
      failures = 0
      loop.answer(value, index)
    } catch (err) {
      if (signal.aborted) break
      index = 0
      loop.failure(err as Error, failures)
      const cap = loop.stale() ? Math.min(backoff.cap, STALE_RETRY_CAP) : backoff.cap
      await pause(fullJitter(failures++, { base: backoff.base, cap }, random), signal)
    }
  }
}
