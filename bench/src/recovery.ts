import type { Sample } from './open-loop.js'

/** How a replica that was frozen took traffic again once it thawed, from an open loop's samples. */
export interface Recovery {
  /**
   * From the thaw to the first answer it served to a request due after the thaw (ms); the whole window
   * when it served none (a censored figure: at least that long).
   */
  firstMs: number
  /** Whether it served any request due in the window. */
  served: boolean
  /** Its share of the 2xx answers to requests due in the window: a third is the fair share of 1 of 3. */
  share: number
}

/** Requests due in [thaw, thaw + windowMs): when `instance` first answered one, and its share of them. */
export function recovery (samples: readonly Sample[], instance: string, thaw: number, windowMs: number): Recovery {
  const answered = samples.filter((s) => s.ok && s.due >= thaw && s.due < thaw + windowMs)
  const mine = answered.filter((s) => s.instance === instance)
  const first = Math.min(...mine.map((s) => s.done))
  return {
    firstMs: mine.length === 0 ? windowMs : first - thaw,
    served: mine.length > 0,
    share: answered.length === 0 ? 0 : mine.length / answered.length
  }
}

/** One run's line in the log: "17 ms", or "never" when it served nothing in the window. */
export function firstServed (r: Recovery): string {
  return r.served ? `${r.firstMs.toFixed(0)} ms` : 'never'
}
