import t from 'tap'
import { interleave, summarize } from '../src/stats.js'

t.test('summarize: median of odd and even counts, min, max', async (t) => {
  t.same(summarize([3, 1, 2]), { median: 2, min: 1, max: 3, samples: [3, 1, 2] })
  t.equal(summarize([4, 1, 3, 2]).median, 2.5)
})

t.test('interleave runs A B A B', async (t) => {
  const order: string[] = []
  const { a, b } = await interleave(2, async () => { order.push('a'); return 1 }, async () => { order.push('b'); return 2 })
  t.same(order, ['a', 'b', 'a', 'b'])
  t.same(a, [1, 1])
  t.same(b, [2, 2])
})

t.test('the table formats small, medium and large numbers and the met column', async (t) => {
  const { table } = await import('../src/run.js')
  const s = (n: number): { median: number, min: number, max: number, samples: number[] } => ({ median: n, min: n, max: n, samples: [n] })
  const base = { unit: 'x', baselineName: 'b', target: 't' }
  const out = table({
    date: '2026-11-25T00:00:00.000Z',
    machine: { cores: 2, cpu: 'cpu', memoryGiB: 24, node: 'v20', consul: 'Consul v1.8.7' },
    rounds: 3,
    figures: [
      { ...base, id: 'A', what: 'a', ours: s(123456), baseline: s(2.5), ratio: 0.0123, met: true },
      { ...base, id: 'B', what: 'b', ours: s(1), baseline: s(0.5), ratio: 2, met: false },
      { ...base, id: 'C', what: 'c', ours: s(3), baseline: s(3), ratio: 1, met: undefined }
    ]
  })
  t.match(out, /\| A \| a \| 123456 x \(123456–123456\) \| 2\.50 x \(2\.50–2\.50\) \| b \| 0\.0123× \| t \| yes \|/)
  t.match(out, /\| B .* \| no \|/)
  t.match(out, /\| C .* \| – \|/)
  t.match(out, /2026-11-25 · 2 cores \(cpu\) · 24 GiB · Node v20 · Consul v1\.8\.7 · 3 rounds/)
})
