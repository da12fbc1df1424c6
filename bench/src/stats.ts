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

/** Runs `a` and `b` alternately (A B A B …), so drift in the machine's load hits both equally. */
export async function interleave<T> (rounds: number, a: () => Promise<T>, b: () => Promise<T>): Promise<{ a: T[], b: T[] }> {
  const out = { a: [] as T[], b: [] as T[] }
  for (let i = 0; i < rounds; i++) {
    out.a.push(await a())
    out.b.push(await b())
  }
  return out
}
