import { DispatchFailedError, type DispatchFailure } from '../../errors.js'

/**
 * What went wrong with one attempt, as outlier detection counts it:
 * - `connect`: the upstream host cannot be reached (refused, unreachable, name not found, connect timeout,
 *   the kernel giving up on it, or the attempt threw before a pool had it). It is ejected at once.
 * - `timeout`: no response in time (our per-try timeout, undici's headers or body timeout).
 * - `reset`: the connection died during the exchange.
 * - `status`: a 5xx answer to an idempotent request (only the caller knows the method, so it says so).
 * The last three are ejected after `consecutiveFailures` in a row.
 */
export type FailureKind = 'connect' | 'timeout' | 'reset' | 'status'

/** One failed attempt, classified once for everyone who decides on it: outlier detection, retries, a gateway. */
export interface Failure {
  /** How it counts against the instance; undefined when it says nothing about it (our own pool closing, an abort). */
  readonly kind: FailureKind | undefined
  /** The connection was never established, so not a byte of the request left: any method may go elsewhere (Envoy's `connect-failure`). */
  readonly neverSent: boolean
  /** The connection failed, before or during the exchange: an idempotent request may go elsewhere. */
  readonly connection: boolean
  /** The upstream did not start answering in time: a gateway answers 504 rather than 502. */
  readonly late: boolean
}

const row = (kind: FailureKind | undefined, neverSent: boolean, connection: boolean, late = false): Failure =>
  Object.freeze({ kind, neverSent, connection, late })

const UNREACHABLE = row('connect', true, true)
const BROKEN = row('reset', false, true)
const CLOSED = row(undefined, false, true)
const NOTHING = row(undefined, false, false)

/**
 * The one table. ETIMEDOUT is the deliberate case: Node reports it both when the kernel gives up opening a
 * connection and when it gives up on an established one (retransmissions or keep-alive probes unanswered
 * for minutes). Either way the host stopped answering TCP, so outlier detection ejects it at once, as for
 * a refused connection; but the request may already have left, so only an idempotent request is sent
 * elsewhere. undici's own connect timeout (UND_ERR_CONNECT_TIMEOUT) is unambiguous and never sent.
 */
const FAILURES: ReadonlyMap<string, Failure> = new Map([
  ['ECONNREFUSED', UNREACHABLE], ['EHOSTUNREACH', UNREACHABLE], ['ENETUNREACH', UNREACHABLE], ['EHOSTDOWN', UNREACHABLE],
  ['ENOTFOUND', UNREACHABLE], ['EAI_AGAIN', UNREACHABLE],
  // The attempt threw before a pool had it.
  ['FST_REG_DISCOVERY_UPSTREAM_UNUSABLE', UNREACHABLE],
  // A Connect-native instance failed TLS (not our CA, another service's certificate): not a byte was sent.
  ['FST_REG_CONNECT_UPSTREAM_REFUSED', UNREACHABLE],
  ['UND_ERR_CONNECT_TIMEOUT', row('connect', true, true, true)],
  ['ETIMEDOUT', row('connect', false, true)],
  ['ECONNRESET', BROKEN], ['EPIPE', BROKEN], ['UND_ERR_SOCKET', BROKEN],
  // The upstream's pool was closed under us because the instance left the set: not the instance's fault.
  ['UND_ERR_CLOSED', CLOSED], ['UND_ERR_DESTROYED', CLOSED],
  ['UND_ERR_HEADERS_TIMEOUT', row('timeout', false, false, true)],
  // The answer had started: too late for a 504, and the body timeout says the instance is slow.
  ['UND_ERR_BODY_TIMEOUT', row('timeout', false, false)],
  // The caller's deadline passed: nothing against the instance (it was given a budget, not a timeout),
  // no retry (there is no time left), and a gateway answers 504.
  ['FST_REG_DISCOVERY_DEADLINE_EXCEEDED', row(undefined, false, false, true)]
])

/**
 * Classifies an error by its `code`, looking through `cause` when the code is not one of the table's:
 * a dispatcher that gives up wraps its last try's error (FST_REG_DISCOVERY_DISPATCH_FAILED), and a
 * proxy such as reply-from wraps that again. An error without a known code anywhere in its first
 * three links says nothing and may not be retried (the bound also stops a cycle of causes).
 */
export function classifyFailure (err: Error): Failure {
  let link: unknown = err
  for (let depth = 0; depth < 3 && link instanceof Error; depth++) {
    const known = FAILURES.get((link as Error & { code?: string }).code ?? '')
    if (known !== undefined) return known
    link = link.cause
  }
  return NOTHING
}

/**
 * The one error a dispatcher rejects with when it gives up before any answer: coded, the last try's own
 * error as its cause, the IDs tried. Its message names the last try's code (or, without one, its class),
 * never its message, which may hold an address.
 */
export function dispatchFailed (service: string, cause: Error, instances: readonly string[]): InstanceType<typeof DispatchFailedError> & DispatchFailure {
  const code = (cause as Error & { code?: string }).code ?? cause.name
  const err = new DispatchFailedError(service, instances.length, code, { cause })
  return Object.assign(err, { tries: instances.length, instances })
}
