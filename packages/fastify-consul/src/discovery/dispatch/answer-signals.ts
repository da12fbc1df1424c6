import type { Attempt } from './attempt.js'
import { retryAfterMs } from './retry-after.js'
import type { RetryPolicy } from './retry-policy.js'
import type { RetryReport } from './retry-route.js'

/**
 * What an answer's status line says about its instance and the fleet, told to those who keep score
 * as soon as the headers arrive, whatever then happens to the answer (passed on, drained for a retry,
 * dropped because another try won): the instance's latency (least-request) and its verdict (outlier
 * detection), the hedge delay's latency sample, a `Retry-After` back-off, and the retry throttle.
 * `retryable`: the status is in the policy's `retryOn` (the caller looked it up once for its own decision).
 */
export function noteAnswer (a: Attempt, status: number, headers: Buffer[], retryable: boolean, idempotent: boolean, policy: RetryPolicy, report: RetryReport): void {
  const now = policy.now()
  a.load.observe(now - a.startedAt, now)
  // A 5xx to a request that is not idempotent says nothing either way: it may be the request's fault.
  if (status < 500) {
    report.succeeded(a.instance)
    policy.hedge?.observe(now - a.startedAt)
  } else if (idempotent) report.failed(a.instance, 'status')
  if (status === 503 || status === 429) {
    const ms = retryAfterMs(headers, Date.now())
    if (ms !== undefined) report.backOff(a.instance, ms)
  }
  // Answers only: a fleet that answers 5xx is overloaded or broken, and retries add to it. A refused
  // connection or a stalled try is one instance's failure, which ejection handles and a retry escapes.
  if (retryable || status >= 500) policy.throttle?.failed()
  else policy.throttle?.succeeded()
}
