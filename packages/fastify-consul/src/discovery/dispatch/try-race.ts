import { LOST, type Attempt } from './attempt.js'
import { MIN_TRY_MS, type Deadline } from './deadline.js'
import type { RetryReport } from './retry-route.js'

/**
 * The race between the tries of one request (Finagle's backup requests, gRPC's hedging): which tries
 * may still answer the caller, which one won, and the hedge timer that starts a second runner. It
 * decides nothing about whether to try again (RetryingHandler does, by method, budget and cause); it
 * ends tries: the losers when one wins, all of them when the caller aborts or the deadline passes.
 */
export class TryRace {
  readonly #report: RetryReport
  readonly #now: () => number
  /** Attempts whose answer may still reach the caller (a `retryOn` answer being drained keeps its place). */
  readonly #live = new Set<Attempt>()
  /** The attempt whose answer the caller gets. */
  #winner: Attempt | undefined
  #hedgeTimer: NodeJS.Timeout | undefined
  #deadline: Deadline | undefined
  #deadlineTimer: NodeJS.Timeout | undefined
  /** The deadline's whole budget when the request was dispatched, in ms (the 504 names it). */
  budgetMs = 0
  /** Why the caller aborted, once it did: every try in flight, and any sent later, is aborted with it. */
  #aborted: Error | undefined

  constructor (report: RetryReport, now: () => number) {
    this.#report = report
    this.#now = now
  }

  /** Tries in the race. */
  get size (): number {
    return this.#live.size
  }

  get winner (): Attempt | undefined {
    return this.#winner
  }

  get aborted (): Error | undefined {
    return this.#aborted
  }

  /** `a` joins the race; with a per-try timeout (ms > 0), `timedOut` runs if it has no answer by then. */
  enter (a: Attempt, perTryMs: number, timedOut: () => void): void {
    this.#live.add(a)
    if (perTryMs > 0) {
      a.timer = setTimeout(timedOut, perTryMs)
      a.timer.unref()
    }
  }

  /** `a` is out of the race without an answer (its per-try timeout): detached, and aborted. */
  cutOff (a: Attempt, err: Error): void {
    this.#live.delete(a)
    a.detached = err
    // Not on a connection yet (queued in the pool): onConnect aborts it when it gets one.
    a.abort?.(err)
  }

  /** `a` leaves the race (it failed, timed out, or its answer is drained); false when it was not in it. */
  leave (a: Attempt): boolean {
    return this.#live.delete(a)
  }

  /** Runs `hedge` after `ms` unless something is decided first (every decision stops the timer). */
  armHedge (ms: number, hedge: () => void): void {
    clearTimeout(this.#hedgeTimer)
    this.#hedgeTimer = setTimeout(hedge, ms)
    this.#hedgeTimer.unref()
  }

  stopHedge (): void {
    clearTimeout(this.#hedgeTimer)
  }

  /** Runs `expire` when `deadline` passes; false, with nothing armed, when too little is left for any try. */
  runUntil (deadline: Deadline, expire: () => void): boolean {
    this.#deadline = deadline
    const left = deadline.remaining()
    this.budgetMs = Math.max(0, Math.round(left))
    if (left < MIN_TRY_MS) return false
    this.#deadlineTimer = setTimeout(expire, left)
    this.#deadlineTimer.unref()
    return true
  }

  /** What is left of the deadline, in ms; undefined without one. */
  remaining (): number | undefined {
    return this.#deadline?.remaining()
  }

  /** The request is over: no hedge, no deadline (per-try timers end with their attempts, see settle()). */
  stop (): void {
    clearTimeout(this.#hedgeTimer)
    clearTimeout(this.#deadlineTimer)
  }

  /** `a`'s answer goes to the caller: every other try is aborted, and the hedge timer stops. */
  commit (a: Attempt): void {
    this.#winner = a
    clearTimeout(this.#hedgeTimer)
    // Out of the race before aborting: undici may report an abort synchronously, and it is no failure.
    const others = [...this.#live].filter((other) => other !== a)
    this.#live.clear()
    this.#live.add(a)
    const now = this.#now()
    for (const other of others) {
      // Beaten without a word by a later try: its time so far is a floor on its latency, and least-request
      // should see it (aborting the try ends its time in flight, which priced a stalled instance out). It
      // counts as a slow failure too: a frozen instance loses every race and is ejected after
      // `consecutiveFailures` of them, where a healthy one that lost one race answers the next.
      // Only a try that started before the winner was beaten on speed; a hedge that started after it just ran out of race.
      if (other.status === 0 && other.startedAt < a.startedAt) {
        other.load.observe(now - other.startedAt, now)
        this.#report.outpaced(other.instance)
      }
      other.detached = LOST
      other.abort?.(LOST)
    }
    if (a.reason === 'hedge') this.#report.hedgeWon(a.instance)
  }

  /** The caller aborted (the first reason counts): every try in flight is aborted with it, and stays in the race to report it. */
  abort (reason: Error): void {
    if (this.#aborted !== undefined) return
    this.#aborted = reason
    clearTimeout(this.#hedgeTimer)
    for (const a of this.#live) a.abort?.(reason)
  }

  /** The deadline passed: every try is aborted with `err` and detached, and nobody wins. */
  abandon (err: Error): void {
    clearTimeout(this.#hedgeTimer)
    const live = [...this.#live]
    this.#live.clear()
    this.#winner = undefined
    const now = this.#now()
    for (const a of live) {
      // No answer within what was left of the deadline: a floor on its latency, for least-request. Without
      // it the abort frees the try's place in flight and a frozen instance looks idle again (a P18 round
      // sent 26 of 799 requests into one that way; with the sample, 1 per round).
      if (a.status === 0) a.load.observe(now - a.startedAt, now)
      a.detached = err
      a.abort?.(err)
    }
  }
}
