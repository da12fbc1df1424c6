export interface Summary {
  median: number
  min: number
  max: number
  samples: number[]
}

export function summarize (samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, samples }
}

/** Which side goes first in round `round` (0-based): A B, then B A, then A B … (ABBA over every two rounds). */
export function firstIn (round: number): 'a' | 'b' {
  return round % 2 === 0 ? 'a' : 'b'
}

/**
 * Runs `a` and `b` once per round, the order alternating (A B, B A, A B …), so neither side always runs
 * on a fresher or a more loaded machine: a drift that favours whoever goes first cancels over two rounds.
 */
export async function interleave<T> (rounds: number, a: (round: number) => Promise<T>, b: (round: number) => Promise<T>): Promise<{ a: T[], b: T[] }> {
  const out = { a: [] as T[], b: [] as T[] }
  for (let i = 0; i < rounds; i++) {
    if (firstIn(i) === 'a') {
      out.a.push(await a(i))
      out.b.push(await b(i))
    } else {
      out.b.push(await b(i))
      out.a.push(await a(i))
    }
  }
  return out
}

/** A small seeded generator (mulberry32): the same samples always give the same interval. */
function seeded (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

const mean = (xs: number[]): number => xs.reduce((x, y) => x + y, 0) / xs.length

/**
 * Percentile-bootstrap 95 % interval of the mean of `samples` (2,000 resamples, seeded). With 3 rounds it
 * is wide (its bounds are close to the extremes), which is the honest answer for 3 rounds.
 */
export function bootstrap95 (samples: number[], resamples = 2000, seed = 1): [number, number] {
  const random = seeded(seed)
  const means = Array.from({ length: resamples }, () => mean(samples.map(() => samples[Math.floor(random() * samples.length)]!)))
  means.sort((x, y) => x - y)
  return [means[Math.floor(0.025 * (resamples - 1))]!, means[Math.ceil(0.975 * (resamples - 1))]!]
}

/** The largest distance from 1 of any A/A ratio (the same system against itself), as a fraction. */
export function noiseOf (aa: number[]): number {
  return Math.max(0, ...aa.map((r) => Math.abs(r - 1)))
}

export interface Verdict {
  /** "met", "no", or "inconclusive (noise ±X %)". */
  text: string
  met: boolean
  /** The bootstrap 95 % interval of the per-round ratios. */
  interval: [number, number]
  /** The A/A noise the verdict was read against, as a fraction (0.05 = ±5 %). */
  noise: number
}

/**
 * Reads per-round ratios (> 1 better) against the lowest acceptable ratio `target`, with the A/A ratios of
 * the same rounds as the yardstick of noise. "met": every round clears the target, or the bootstrap 95 %
 * interval lies above it. "no": even the best round misses it by more than the noise. Anything between
 * is "inconclusive", with the noise that makes it so.
 */
export function verdict (ratios: number[], target: number, aa: number[]): Verdict {
  const interval = bootstrap95(ratios)
  const noise = noiseOf(aa)
  const base = { interval, noise }
  if (ratios.every((r) => r >= target) || interval[0] >= target) return { ...base, text: 'met', met: true }
  if (Math.max(...ratios) < target - noise) return { ...base, text: 'no', met: false }
  return { ...base, text: `inconclusive (noise ±${(100 * noise).toFixed(noise < 0.1 ? 1 : 0)} %)`, met: false }
}

/**
 * The order of several sides in round `round`: rotated by one each round (a Latin square), so over as
 * many rounds as sides each side runs once in every position, and none is always first or last.
 */
export function rotation<T> (sides: readonly T[], round: number): T[] {
  const k = round % sides.length
  return [...sides.slice(k), ...sides.slice(0, k)]
}

/**
 * `rounds` rounds of one run per side, in `rotation` order; `report` hears each run as it ends (the log).
 * The runs by side, in round order.
 */
export async function rotatedRounds<S extends string, R> (rounds: number, sides: readonly S[], run: (side: S) => Promise<R>, report: (round: number, side: S, r: R) => void): Promise<Record<S, R[]>> {
  const runs = Object.fromEntries(sides.map((side) => [side, [] as R[]])) as Record<S, R[]>
  for (let round = 0; round < rounds; round++) {
    for (const side of rotation(sides, round)) {
      const r = await run(side)
      runs[side].push(r)
      report(round, side, r)
    }
  }
  return runs
}
