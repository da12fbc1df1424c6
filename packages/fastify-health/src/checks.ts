import { performance } from 'node:perf_hooks'
import { DuplicateCheckError } from './errors.js'

// Runs health checks in the background, each bounded by its timeout, never two runs of one check at once.
// Knows nothing about Fastify or HTTP: it reports results to a callback.

export type CheckStatus = 'passing' | 'warning' | 'critical'

/**
 * A health check. It passes when it returns or resolves; it fails when it throws or rejects. It may resolve
 * to a {@link CheckReport} to report a status explicitly. The signal aborts when the check times out or the
 * app closes: pass it on to I/O so an abandoned run stops, and the next one can start.
 */
export type CheckFn = (signal: AbortSignal) => unknown | Promise<unknown>

/** What a check may resolve to in order to report a status of its own. Anything else counts as passing. */
export interface CheckReport {
  status: CheckStatus
  output?: string
}

export interface CheckOptions {
  /** A failing critical check makes the instance critical (503); a non-critical one only warns (429). Default `true`. */
  critical?: boolean | undefined
  /** How long a run may take before it counts as failed: ms or a duration ('2s'). Default: the plugin's `defaultTimeout`. */
  timeout?: number | string | undefined
  /** From the end of one run to the start of the next: ms or a duration. Default: the plugin's `defaultInterval`. */
  interval?: number | string | undefined
  /**
   * A start period, as Docker's `start_period` or a Kubernetes startup probe: for this long after the check
   * first runs, a failing result is shown with `starting: true` but does not count towards the status. The
   * first passing result ends it early. For checks on something that answers after boot (a discovery
   * watch's first answer, a cache warming). ms or a duration. Default 0: none.
   */
  grace?: number | string | undefined
}

/** The latest outcome of one check, as `status()` and the `/health` body show it. */
export interface CheckResult {
  readonly status: CheckStatus
  readonly output?: string
  readonly durationMs: number
  /** When the run finished (or timed out), as an ISO 8601 string. */
  readonly checkedAt: string
  readonly critical: boolean
  /** Present while the check is in its start period (`grace`) and failing: shown, but not counted. */
  readonly starting?: true
}

export interface CheckDefinition {
  readonly name: string
  readonly fn: CheckFn
  readonly critical: boolean
  readonly timeout: number
  readonly interval: number
  /** ms of start period; 0 or absent: none. */
  readonly grace?: number
}

/** Outputs land in every /health body and in Consul, which keeps only 4 KB; an HTML error page must not. */
export const MAX_OUTPUT_LENGTH = 1024

const REPORTED = new Set<unknown>(['passing', 'warning', 'critical'])

function isReport (value: unknown): value is CheckReport {
  return typeof value === 'object' && value !== null && REPORTED.has((value as { status?: unknown }).status)
}

/** The message only: stacks leak file paths to whoever can read /health. */
export function errorOutput (err: unknown): string {
  if (err instanceof Error) {
    // A connection refused during happy-eyeballs is an AggregateError with an empty message.
    return err.message === '' ? err.name : err.message
  }
  return String(err)
}

function clip (output: string): string {
  return output.length > MAX_OUTPUT_LENGTH ? output.slice(0, MAX_OUTPUT_LENGTH - 1) + '…' : output
}

function failure (critical: boolean): CheckStatus {
  return critical ? 'critical' : 'warning'
}

function result (def: CheckDefinition, status: CheckStatus, output: string | undefined, started: number): CheckResult {
  // A non-critical check must never take the instance out of rotation, even if it reports 'critical' itself.
  const capped = status === 'critical' && !def.critical ? 'warning' : status
  const durationMs = Math.round((performance.now() - started) * 100) / 100
  const checkedAt = new Date().toISOString()
  return Object.freeze(output === undefined
    ? { status: capped, durationMs, checkedAt, critical: def.critical }
    : { status: capped, output: clip(output), durationMs, checkedAt, critical: def.critical })
}

export interface CheckRun {
  /** Settles with the outcome when the check settles, times out or is aborted, whichever comes first. */
  readonly result: Promise<CheckResult>
  /** Settles when the check function itself has settled, which a check that ignores its signal may never do. */
  readonly settled: Promise<void>
}

/**
 * Runs a check once. Aborting `controller` (the app closing) ends the run with the abort reason as output;
 * the timeout aborts it the same way, with a `TimeoutError` whose message is `timeout after Nms`.
 */
export function runCheck (def: CheckDefinition, controller: AbortController): CheckRun {
  const { signal } = controller
  const started = performance.now()
  let done = false
  let finish!: (status: CheckStatus, output: string | undefined) => void
  const resultPromise = new Promise<CheckResult>((resolve) => {
    finish = (status, output) => {
      // The first outcome wins: a check that settles after its timeout has already been reported as failed.
      if (done) return
      done = true
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      resolve(result(def, status, output, started))
    }
  })
  // Finish before the check sees the abort, so a check that rejects on abort cannot replace the timeout output.
  const onAbort = (): void => finish(failure(def.critical), errorOutput(signal.reason))
  signal.addEventListener('abort', onAbort, { once: true })
  const timer = setTimeout(() => {
    controller.abort(new DOMException(`timeout after ${def.timeout}ms`, 'TimeoutError'))
  }, def.timeout)

  // The executor turns a synchronous throw into a rejection.
  const settled = new Promise<unknown>((resolve) => resolve(def.fn(signal))).then(
    (value) => {
      if (isReport(value)) finish(value.status, typeof value.output === 'string' ? value.output : undefined)
      else finish('passing', undefined)
    },
    (err: unknown) => finish(failure(def.critical), errorOutput(err))
  )
  return { result: resultPromise, settled }
}

/** One check on its own timer: run, report, wait for the function to settle, wait `interval`, run again. */
class ScheduledCheck {
  readonly #def: CheckDefinition
  readonly #report: (name: string, result: CheckResult) => void
  #timer: NodeJS.Timeout | undefined
  #controller: AbortController | undefined
  #stopped = false
  /** When the start period ends (performance.now() ms), set on the first run; -Infinity once it is over. */
  #graceEnds: number | undefined

  constructor (def: CheckDefinition, report: (name: string, result: CheckResult) => void) {
    this.#def = def
    this.#report = report
  }

  /** Resolves once the first result has been reported. */
  run (): Promise<void> {
    this.#graceEnds ??= performance.now() + (this.#def.grace ?? 0)
    const controller = new AbortController()
    this.#controller = controller
    const run = runCheck(this.#def, controller)
    // The next run waits for this one's function to settle, not just for its timeout: a hung dependency
    // gets one pending call from us, never a pile of them.
    run.settled.then(() => {
      this.#controller = undefined
      if (!this.#stopped) this.#schedule()
    })
    return run.result.then((result) => {
      if (!this.#stopped) this.#report(this.#def.name, this.#inGrace(result) ? Object.freeze({ ...result, starting: true as const }) : result)
    })
  }

  /** Docker's rule: a failure within the start period does not count; the first success ends the period. */
  #inGrace (result: CheckResult): boolean {
    if (result.status === 'passing') this.#graceEnds = -Infinity
    return performance.now() < this.#graceEnds!
  }

  #schedule (): void {
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => { this.run() }, this.#def.interval)
      // Background checks alone must not keep the process alive.
      this.#timer.unref()
    } else {
      // refresh() re-arms the one timer this check owns instead of allocating one per run.
      this.#timer.refresh()
    }
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#controller?.abort(new Error('health checks stopped'))
  }
}

/**
 * The set of checks of one app. Checks added before {@link CheckScheduler.start} wait for it, so the first
 * round can be awaited as a whole; checks added later start at once.
 */
export class CheckScheduler {
  readonly #checks = new Map<string, ScheduledCheck>()
  readonly #report: (name: string, result: CheckResult) => void
  #started = false
  #stopped = false

  constructor (report: (name: string, result: CheckResult) => void) {
    this.#report = report
  }

  /** True once {@link CheckScheduler.start} was called: new checks no longer hold up the first round. */
  get started (): boolean {
    return this.#started
  }

  add (def: CheckDefinition): void {
    if (this.#checks.has(def.name)) throw new DuplicateCheckError(def.name)
    const check = new ScheduledCheck(def, this.#report)
    this.#checks.set(def.name, check)
    if (this.#started && !this.#stopped) check.run()
  }

  /** Runs every check added so far once, resolves when all have reported, and keeps them running. */
  async start (): Promise<void> {
    this.#started = true
    await Promise.all(Array.from(this.#checks.values(), (check) => check.run()))
  }

  /** Stops every timer and aborts runs in flight; their late results are dropped. */
  stop (): void {
    this.#stopped = true
    for (const check of this.#checks.values()) check.stop()
  }
}
