import type { Duplex } from 'node:stream'
import { util, type Dispatcher } from 'undici'

/** The undici handler protocol that Client and Pool speak natively (and that request() and fetch() use). */
export interface LegacyHandler {
  onConnect (abort: (err?: Error) => void, context?: unknown): void
  onError (err: Error): void
  onHeaders? (statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean
  onData? (chunk: Buffer): boolean
  onComplete? (trailers: string[] | Buffer[] | null): void
  onUpgrade? (statusCode: number, headers: Buffer[] | string[] | null, socket: Duplex): void
  onResponseStarted? (): void
  onBodySent? (chunk: unknown, total?: number): void
  onRequestSent? (): void
}

/**
 * Presents a handler written for undici's newer controller API (what `compose()`d interceptors pass
 * down) as the classic callbacks that the retrying handler and undici's Pool speak.
 */
export class ControllerAdapter implements LegacyHandler, Dispatcher.DispatchController {
  readonly #handler: Dispatcher.DispatchHandler
  #abort: ((err?: Error) => void) | undefined
  #resume: (() => void) | undefined
  #paused = false
  #reason: Error | null = null
  rawHeaders: Buffer[] | string[] | null = null
  rawTrailers: Buffer[] | string[] | null = null

  constructor (handler: Dispatcher.DispatchHandler) {
    this.#handler = handler
  }

  get aborted (): boolean { return this.#reason !== null }
  get paused (): boolean { return this.#paused }
  get reason (): Error | null { return this.#reason }

  abort (reason: Error): void {
    if (this.#reason !== null) return
    this.#reason = reason
    this.#abort?.(reason)
  }

  pause (): void { this.#paused = true }

  resume (): void {
    if (!this.#paused) return
    this.#paused = false
    this.#resume?.()
  }

  onConnect (abort: (err?: Error) => void, context?: unknown): void {
    this.#abort = abort
    this.#handler.onRequestStart?.(this, context)
  }

  // undici's Client always passes arrays for raw headers and trailers (its own UnwrapHandler relies on it).
  onUpgrade (statusCode: number, headers: Buffer[] | string[] | null, socket: Duplex): void {
    this.rawHeaders = headers
    this.#handler.onRequestUpgrade?.(this, statusCode, util.parseHeaders(headers as Buffer[]), socket)
  }

  onHeaders (statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    this.#resume = resume
    this.rawHeaders = headers
    this.#handler.onResponseStart?.(this, statusCode, util.parseHeaders(headers), statusText)
    return !this.#paused
  }

  onData (chunk: Buffer): boolean {
    this.#handler.onResponseData?.(this, chunk)
    return !this.#paused
  }

  onComplete (trailers: string[] | Buffer[] | null): void {
    this.rawTrailers = trailers
    this.#handler.onResponseEnd?.(this, util.parseHeaders(trailers as Buffer[]))
  }

  onError (err: Error): void {
    this.#handler.onResponseError?.(this, err)
  }
}

/** The caller's handler in the classic callbacks, whichever of undici's two handler APIs it speaks. */
export function legacyHandler (handler: Dispatcher.DispatchHandler): LegacyHandler {
  return typeof handler.onRequestStart === 'function' ? new ControllerAdapter(handler) : handler as LegacyHandler
}
