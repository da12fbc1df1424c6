import t from 'tap'
import { interleave, summarize, type Summary } from '../src/stats.js'

const s = (n: number): Summary => ({ median: n, min: n, max: n, samples: [n] })

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

t.test('the table formats small, medium and large numbers, the met column and the commit', async (t) => {
  const { table } = await import('../src/run.js')
  const base = { unit: 'x', baselineName: 'b', target: 't' }
  const report = {
    date: '2026-11-25T00:00:00.000Z',
    commit: { sha: '0123456789abcdef0123', dirty: false },
    machine: { cores: 2, cpu: 'cpu', memoryGiB: 24, node: 'v20', consul: 'Consul v1.8.7' },
    rounds: 3,
    figures: [
      { ...base, id: 'A', what: 'a', ours: s(123456.7), baseline: s(2.5), ratio: 0.0123, met: true },
      { ...base, id: 'B', what: 'b', ours: s(1), baseline: s(0.5), ratio: 2, met: false },
      { ...base, id: 'C', what: 'c', ours: s(3), baseline: s(3), ratio: 1, met: undefined }
    ]
  }
  const out = table(report)
  t.match(out, /\| A \| a \| 123457 x \(123457–123457\) \| 2\.50 x \(2\.50–2\.50\) \| b \| 0\.0123× \| t \| yes \|/)
  t.match(out, /\| B \| b \| 1 x \(1–1\) .* \| 2× \| t \| no \|/)
  t.match(out, /\| C .* \| – \|/)
  t.match(out, /2026-11-25 · commit 0123456789ab · 2 cores \(cpu\) · 24 GiB · Node v20 · Consul v1\.8\.7 · 3 rounds/)
  t.match(table({ ...report, commit: { sha: 'abc', dirty: true } }), /commit abc \(with uncommitted changes\) ·/)
})

t.test('a throughput figure whose loads saw a non-2xx or an error is shown as invalid, not as a ratio', async (t) => {
  const { table } = await import('../src/run.js')
  const figure = { id: 'T', what: 'w', unit: 'req/s', ours: s(900), baseline: s(1000), baselineName: 'b', ratio: 0.9, target: '≥ 0.9×', met: false }
  const report = { date: '2026-11-25T00:00:00.000Z', commit: { sha: 'abc', dirty: false }, machine: { cores: 2, cpu: 'cpu', memoryGiB: 24, node: 'v20', consul: 'Consul' }, rounds: 1 }
  t.match(table({ ...report, figures: [{ ...figure, loads: { requests: 5000, non2xx: 3, errors: 1 } }] }), /\| b \| invalid \| ≥ 0\.9× \| invalid: 3 non-2xx, 1 errors in 5000 requests \|/)
  t.match(table({ ...report, figures: [{ ...figure, loads: { requests: 5000, non2xx: 0, errors: 0 } }] }), /\| b \| 0\.900× \| ≥ 0\.9× \| no \|/)
})

t.test('a failure-count figure shows counts, requests per run and the share failed, and no ratio', async (t) => {
  const { table } = await import('../src/run.js')
  const { failureFigure } = await import('../src/failures.js')
  // Non-2xx answers and errors both count as failed; sent = answered + failed.
  const run = (non2xx: number, errors: number, sent: number): { ok: number, non2xx: number, errors: number } => ({ ok: sent - non2xx - errors, non2xx, errors })
  const spec = { id: 'F', what: 'w', baselineName: 'b', target: 'ours 0', ours: [run(0, 0, 20_000), run(0, 0, 30_000)], baseline: [run(1, 4, 20_000), run(0, 15, 30_000)], minRequests: 20_000 }
  const figure = failureFigure(spec)
  t.equal(figure.ratio, null)
  t.equal(figure.met, true)
  const report = { date: '2026-11-25T00:00:00.000Z', commit: { sha: 'abc', dirty: false }, machine: { cores: 2, cpu: 'cpu', memoryGiB: 24, node: 'v20', consul: 'Consul' }, rounds: 2, figures: [figure] }
  t.match(table(report), /\| F \| w \| 0 failed \(0–0\) of 25000 requests per run · 0% \| 10 failed \(5–15\) of 25000 requests per run · 0\.0400% \| b \| – \| ours 0 \| yes \|/)
  t.equal(failureFigure({ ...spec, ours: [run(1, 0, 30_000)] }).met, false, 'one failure misses the target')
  t.equal(failureFigure({ ...spec, ours: [run(0, 0, 19_999)] }).met, false, 'so does a run that was too small')
  t.equal(failureFigure({ ...spec, ours: [run(0, 0, 19_999)], minRequests: undefined }).met, true, 'any size will do without minRequests')
})
