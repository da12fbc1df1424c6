import t from 'tap'
import { BALANCERS, createBalancer, smoothSchedule, type Balancer } from '../src/discovery/balancer.js'
import type { Instance } from '../src/discovery/instance.js'

function inst (id: string, weight = 1): Instance {
  return Object.freeze({
    id,
    service: 'svc',
    node: 'n1',
    address: '127.0.0.1',
    port: 1000,
    host: '127.0.0.1',
    tags: [],
    meta: {},
    weight,
    status: weight > 0 ? 'passing' : 'critical',
    maintenance: false
  })
}

/** A repeating sequence: deterministic "random" numbers. */
function sequence (...values: number[]): () => number {
  let i = 0
  return () => values[i++ % values.length]!
}

/** Evenly spaced points over [0, 1): a draw-for-draw stand-in for a uniform source. */
function grid (n: number): () => number {
  let k = 0
  return () => ((k++ % n) + 0.5) / n
}

function picks (b: Balancer, n: number): string[] {
  return Array.from({ length: n }, () => b.pick()!.id)
}

function shares (ids: string[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const id of ids) out[id] = (out[id] ?? 0) + 1
  return out
}

const abc = [inst('a'), inst('b'), inst('c')]

t.test('names', async (t) => {
  t.same(BALANCERS, ['round-robin', 'random', 'weighted'])
  for (const name of BALANCERS) t.equal(createBalancer(name, abc).name, name)
})

t.test('round-robin rotates over every instance from a random start', async (t) => {
  const b = createBalancer('round-robin', abc, { random: () => 0.5 })
  t.equal(b.size, 3)
  t.same(picks(b, 7), ['b', 'c', 'a', 'b', 'c', 'a', 'b'], 'starts at floor(0.5 × 3) = 1, then wraps')
  t.same(picks(createBalancer('round-robin', abc, { random: () => 0 }), 3), ['a', 'b', 'c'])
  t.same(shares(picks(createBalancer('round-robin', abc), 300)), { a: 100, b: 100, c: 100 }, 'Math.random by default')
})

t.test('random uses the injected source', async (t) => {
  const b = createBalancer('random', abc, { random: sequence(0, 0.34, 0.9, 0.99999, 1) })
  t.same(picks(b, 5), ['a', 'b', 'c', 'c', 'c'], 'a source that returns 1 still lands on the last instance')
  t.equal(b.size, 3)
})

t.test('weighted: smooth weighted round-robin, shares exact over whole periods', async (t) => {
  t.same([...smoothSchedule([5, 1, 1])], [0, 0, 1, 0, 2, 0, 0], "nginx's interleaving, not a a a a a b c")
  t.same([...smoothSchedule([6, 2, 2])], [...smoothSchedule([3, 1, 1])], 'weights are reduced by their gcd')
  t.equal(smoothSchedule([6, 2, 2]).length, 5)

  const b = createBalancer('weighted', [inst('a', 3), inst('b', 1), inst('c', 2)], { random: () => 0 })
  t.same(shares(picks(b, 6 * 1000)), { a: 3000, b: 1000, c: 2000 })
  const offset = createBalancer('weighted', [inst('a', 3), inst('b', 1)], { random: () => 0.5 })
  t.same(picks(offset, 4), ['b', 'a', 'a', 'a'], 'schedule a a b a, entered at floor(0.5 × 4) = 2')
})

t.test('weighted with equal weights is plain round-robin', async (t) => {
  const b = createBalancer('weighted', [inst('a', 7), inst('b', 7)], { random: () => 0 })
  t.equal(b.name, 'weighted')
  t.same(picks(b, 4), ['a', 'b', 'a', 'b'])
})

t.test('weighted falls back to the alias method when the exact schedule would be too large', async (t) => {
  // gcd 1 and ~490k per period × 10 instances: past the precompute budget.
  const weights = [60000, 30000, 50001, 50000, 50000, 50000, 50000, 50000, 50000, 50000]
  const list = weights.map((w, i) => inst(`i${i}`, w))
  const total = weights.reduce((a, b) => a + b, 0)
  const n = 100_000
  const b = createBalancer('weighted', list, { random: grid(n) })
  t.equal(b.size, 10)
  const got = shares(picks(b, n))
  for (const [i, w] of weights.entries()) {
    const share = (got[`i${i}`] ?? 0) / n
    t.ok(Math.abs(share - w / total) < 0.002, `i${i}: ${share.toFixed(4)} ≈ ${(w / total).toFixed(4)}`)
  }
  const edge = createBalancer('weighted', list, { random: () => 0.9999999999 })
  t.ok(edge.pick(), 'the top of the range maps to an instance')
})

t.test('weight 0 is never picked, by any balancer', async (t) => {
  const list = [inst('a', 2), inst('zero', 0), inst('b', 1)]
  for (const name of BALANCERS) {
    const b = createBalancer(name, list, { random: grid(9) })
    t.equal(b.size, 2, name)
    t.notOk(picks(b, 30).includes('zero'), name)
  }
})

t.test('an empty snapshot picks undefined', async (t) => {
  for (const name of BALANCERS) {
    const b = createBalancer(name, [])
    t.equal(b.size, 0)
    t.equal(b.pick(), undefined, name)
  }
  t.equal(createBalancer('weighted', [inst('x', 0)]).pick(), undefined)
})
