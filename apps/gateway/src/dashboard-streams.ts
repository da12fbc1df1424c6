import type { ServerResponse } from 'node:http'

// The live view's open event streams, bounded twice: in number (each holds a socket, a heartbeat timer
// and a write buffer) and in what each may leave unsent. A viewer that stops reading (a paused or dead
// tab, a hostile client) would otherwise keep every snapshot written to it in memory for ever: Node
// buffers what the socket cannot take. One snapshot is serialised once and the same bytes written to
// every stream, and the callers listen to the watch and the dispatcher once for all of them, so 20
// viewers add no listener to either (the MaxListenersExceededWarning of issue #31).

export interface StreamLimits {
  /** Streams open at once; the next one is refused. */
  maxStreams: number
  /** Bytes a stream may leave unsent (Node's buffer plus the socket's); past it, the stream is dropped. */
  maxBufferedBytes: number
}

export class EventStreams {
  readonly #streams = new Set<ServerResponse>()
  readonly #limits: StreamLimits
  readonly #onDrop: (res: ServerResponse) => void

  constructor (limits: StreamLimits, onDrop: (res: ServerResponse) => void) {
    this.#limits = limits
    this.#onDrop = onDrop
  }

  get size (): number {
    return this.#streams.size
  }

  get full (): boolean {
    return this.#streams.size >= this.#limits.maxStreams
  }

  /** Tracks `res` until it closes, however it closes. */
  add (res: ServerResponse): void {
    this.#streams.add(res)
    res.once('close', () => this.#streams.delete(res))
  }

  /**
   * Writes `frame` to `to` (default: every stream). A stream already holding more than maxBufferedBytes
   * unsent is destroyed instead: its reader has stopped, and another snapshot would only add to the pile.
   * Writes ignore backpressure on purpose: a snapshot is small, and the bound is what stops the growth.
   */
  send (frame: Buffer, to: Iterable<ServerResponse> = this.#streams): void {
    for (const res of [...to]) {
      if (res.writableLength > this.#limits.maxBufferedBytes) {
        this.#streams.delete(res)
        this.#onDrop(res)
        res.destroy()
      } else {
        res.write(frame)
      }
    }
  }

  /** Ends every stream (an event stream never ends on its own, and close() would wait for it). */
  endAll (): void {
    for (const res of [...this.#streams]) res.end()
    this.#streams.clear()
  }
}
