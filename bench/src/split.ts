import type { Sample } from './open-loop.js'

// How traffic moved between priority levels (datacenters, zones) in an open loop's samples and in a
// watch's split, for the failover and return figures (P20, P21, R16). Pure, so test/split.test.ts reads
// the edge cases a smoke round does not reach.

/**
 * The first answer by `mine` to a request due from `from` on: when it ended, in ms after `reference`.
 * Signed: P20's reference is Consul's report, and a dispatcher that spilled before Consul noticed
 * served earlier than that. Undefined when `mine` answered none.
 */
export function firstAnswer (samples: readonly Sample[], mine: (s: Sample) => boolean, from: number, reference: number): number | undefined {
  let first = Infinity
  for (const s of samples) if (s.ok && s.due >= from && mine(s) && s.done < first) first = s.done
  return first === Infinity ? undefined : first - reference
}

/**
 * When `mine` served the majority again: ms after `from` until the first moment more than half of the
 * last `n` answers (2xx to requests due from `from` on, in the order they ended) came from `mine`.
 * A run of `n` rather than one answer, so that a single lucky pick is not a return. Undefined when it
 * never happened.
 */
export function majorityAfter (samples: readonly Sample[], mine: (s: Sample) => boolean, from: number, n: number): number | undefined {
  const answers = samples.filter((s) => s.ok && s.due >= from).sort((a, b) => a.done - b.done)
  let count = 0
  for (const [i, s] of answers.entries()) {
    if (mine(s)) count++
    if (i >= n && mine(answers[i - n]!)) count--
    if (i >= n - 1 && count > n / 2) return s.done - from
  }
  return undefined
}

/** The log's reading of a time that may not have happened: "-4210 ms", or "never". */
export function msOrNever (x: number | undefined): string {
  return x === undefined ? 'never' : `${x.toFixed(0)} ms`
}

/** A share among the answers: 0 of none is 0, not NaN. */
export function shareOf<T> (answers: readonly T[], mine: (a: T) => boolean): number {
  return answers.filter(mine).length / Math.max(1, answers.length)
}

/**
 * Changes of direction in a series of one level's traffic share (a failover and its return, 1 → 0.7
 * → 0 → 0.7 → 1, is one: down, then up). Repeated values are no move. A split that flaps between the
 * levels shows as more.
 */
export function directionChanges (values: readonly number[]): number {
  let changes = 0
  let last: number | undefined
  let direction = 0
  for (const v of values) {
    if (last !== undefined && v !== last) {
      const d = Math.sign(v - last)
      if (direction !== 0 && d !== direction) changes++
      direction = d
    }
    last = v
  }
  return changes
}
