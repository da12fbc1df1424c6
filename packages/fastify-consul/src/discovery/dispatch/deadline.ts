import { AsyncLocalStorage } from 'node:async_hooks'

// Deadlines that travel: a request's remaining budget goes downstream in one header, each hop reads it
// back into a deadline, and outbound calls made while handling the request inherit it (gRPC's deadline
// propagation, for HTTP). Times are on performance.now()'s monotonic clock: a wall-clock step must
// not shorten or stretch anyone's budget.

/**
 * Envoy's name for the time the caller will wait, in whole milliseconds. Envoy sends it to every
 * upstream, so a service behind an Envoy mesh already receives it, and one caller behind reg and the
 * next behind Envoy speak the same header. gRPC's `grpc-timeout` needs unit parsing and means gRPC;
 * W3C has no deadline header.
 */
export const DEADLINE_HEADER = 'x-envoy-expected-rq-timeout-ms'

/** No try starts with less than this left of the deadline: it could not get an answer back in time. */
export const MIN_TRY_MS = 5

/** A point in time a request must be answered by. */
export class Deadline {
  /** On performance.now()'s clock, in ms. */
  readonly at: number

  constructor (at: number) {
    this.at = at
  }

  /** A deadline `ms` from now. */
  static in (ms: number): Deadline {
    return new Deadline(performance.now() + ms)
  }

  /** What is left, in ms (negative once it passed). */
  remaining (): number {
    return this.at - performance.now()
  }

  get expired (): boolean {
    return this.remaining() <= 0
  }
}

/** The earlier of two deadlines; undefined when neither is set. */
export function earliest (a: Deadline | undefined, b: Deadline | undefined): Deadline | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  return a.at <= b.at ? a : b
}

/**
 * Reads a deadline header as sent by a caller that may be wrong or hostile: one value of 1 to 9 digits,
 * above 0, is a budget, clamped to `maxMs` (a caller may not make us hold work longer than we allow).
 * Anything else is ignored, not guessed at: a repeated header (an array, or values joined by commas),
 * a sign, a fraction, an exponent, letters, spaces inside, 0. Returns the budget in ms.
 */
export function parseDeadlineHeader (value: string | readonly string[] | undefined, maxMs: number): number | undefined {
  if (typeof value !== 'string') return undefined
  const text = value.trim()
  if (!/^\d{1,9}$/.test(text)) return undefined
  const ms = Number(text)
  return ms > 0 ? Math.min(ms, maxMs) : undefined
}

const storage = new AsyncLocalStorage<Deadline>()

/** The deadline of the request being handled (see the plugin's onRequest hook), if any. */
export function currentDeadline (): Deadline | undefined {
  return storage.getStore()
}

/** Runs `fn` with `deadline` inherited by every dispatch made from it, however deep in async calls. */
export function runWithDeadline<T> (deadline: Deadline | undefined, fn: () => T): T {
  return storage.run(deadline as Deadline, fn)
}

/** setTimeout's longest delay: a caller's own deadline header is its business, but must fit a timer. */
const MAX_TIMER_MS = 2_147_483_647

/**
 * A dispatched request's deadline: the earliest of its own `header` (the caller's, trusted as far as a
 * timer can hold it), the request being handled (inherited) and the dispatcher's option (0: none).
 */
export function requestDeadline (header: string | string[] | undefined, optionMs: number): Deadline | undefined {
  const own = parseDeadlineHeader(header, MAX_TIMER_MS)
  return earliest(earliest(own === undefined ? undefined : Deadline.in(own), currentDeadline()), optionMs > 0 ? Deadline.in(optionMs) : undefined)
}
