import t from 'tap'
import { bootstrap95, firstIn, interleave, noiseOf, summarize, verdict, type Summary } from '../src/stats.js'

const s = (n: number): Summary => ({ median: n, min: n, max: n, samples: [n] })

t.test('summarize: median of odd and even counts, min, max', async (t) => {
  t.same(summarize([3, 1, 2]), { median: 2, min: 1, max: 3, samples: [3, 1, 2] })
  t.equal(summarize([4, 1, 3, 2]).median, 2.5)
})

t.test('interleave alternates who goes first: A B, B A, A B, B A', async (t) => {
  const order: string[] = []
  const { a, b } = await interleave(4, async (r) => { order.push(`a${r}`); return r }, async (r) => { order.push(`b${r}`); return 10 + r })
  t.same(order, ['a0', 'b0', 'b1', 'a1', 'a2', 'b2', 'b3', 'a3'])
  t.same(a, [0, 1, 2, 3], 'each side\'s results in round order, whoever went first')
  t.same(b, [10, 11, 12, 13])
  t.same([0, 1, 2, 3].map(firstIn), ['a', 'b', 'a', 'b'])
})

t.test('bootstrap95: a seeded percentile interval of the mean that holds the samples\' mean', async (t) => {
  const [lo, hi] = bootstrap95([1, 1.1, 0.9, 1.05, 0.95])
  t.ok(lo < 1 && hi > 1 && lo >= 0.9 && hi <= 1.1, `${lo}–${hi}`)
  t.same(bootstrap95([1, 1.1, 0.9]), bootstrap95([1, 1.1, 0.9]), 'the same samples give the same interval')
  t.same(bootstrap95([2, 2, 2]), [2, 2], 'no spread, no width')
})

t.test('noiseOf: the largest distance of an A/A ratio from 1', async (t) => {
  t.equal(noiseOf([1.02, 0.97, 1]), 0.030000000000000027)
  t.equal(noiseOf([]), 0)
})

t.test('verdict: met only when every round or the interval clears the target; no only beyond the noise', async (t) => {
  t.match(verdict([1.0, 0.99, 1.01], 0.97, [1.01, 0.99]), { text: 'met', met: true }, 'every round clears')
  // P1 on main: 1.00 / 0.989 / 1.62 read "met" from a median; here one round below 0.97 spoils it.
  t.match(verdict([1.0, 0.9, 1.62], 0.97, [1.2, 0.85]), { text: 'inconclusive (noise ±20 %)', met: false })
  t.match(verdict([0.8, 0.82, 0.79], 0.97, [1.02, 0.98]), { text: 'no', met: false }, 'every round misses by more than the noise')
  t.match(verdict([0.93, 0.94, 0.95], 0.97, [1.04, 0.97]), { text: 'inconclusive (noise ±4.0 %)', met: false }, 'within the noise of the target')
  // The interval alone can carry it: many rounds, one low.
  const many = [1.1, 1.12, 1.08, 1.1, 1.11, 1.09, 1.1, 1.1, 1.12, 0.96]
  t.match(verdict(many, 1.0, [1.01]), { text: 'met', met: true }, 'one low round in ten, the interval is above the target')
  t.ok(verdict(many, 1.0, [1.01]).interval[0] >= 1.0)
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
  t.match(out, /\| A \| a \| 123457 x \(123457–123457\) \| 2\.50 x \(2\.50–2\.50\) \| b \| 0\.0123× \| – \| t \| yes \|/)
  t.match(out, /\| B \| b \| 1 x \(1–1\) .* \| 2× \| – \| t \| no \|/)
  t.match(out, /\| C .* \| – \|/)
  const withAa = table({ ...report, loadavg: { start: [1.5, 1, 0.5], end: [2, 1.25, 0.75] }, seconds: 1200, figures: [{ ...report.figures[1]!, aa: summarize([1.02, 0.97, 1]), verdict: 'inconclusive (noise ±3.0 %)' }] })
  t.match(withAa, /\| 2× \| 1× \(0\.970–1\.02\) \| t \| inconclusive \(noise ±3\.0 %\) \|/, 'the A/A ratios beside the ratio, the verdict in the last column')
  t.match(withAa, /3 rounds · load average 1\.50 1\.00 0\.50 at the start, 2\.00 1\.25 0\.75 at the end · 20 min\n$/)
  t.match(out, /2026-11-25 · commit 0123456789ab · 2 cores \(cpu\) · 24 GiB · Node v20 · Consul v1\.8\.7 · 3 rounds/)
  t.match(table({ ...report, commit: { sha: 'abc', dirty: true } }), /commit abc \(with uncommitted changes\) ·/)
})

t.test('a throughput figure whose loads saw a non-2xx or an error is shown as invalid, not as a ratio', async (t) => {
  const { table } = await import('../src/run.js')
  const figure = { id: 'T', what: 'w', unit: 'req/s', ours: s(900), baseline: s(1000), baselineName: 'b', ratio: 0.9, target: '≥ 0.9×', met: false }
  const report = { date: '2026-11-25T00:00:00.000Z', commit: { sha: 'abc', dirty: false }, machine: { cores: 2, cpu: 'cpu', memoryGiB: 24, node: 'v20', consul: 'Consul' }, rounds: 1 }
  t.match(table({ ...report, figures: [{ ...figure, loads: { requests: 5000, non2xx: 3, errors: 1 } }] }), /\| b \| invalid \| – \| ≥ 0\.9× \| invalid: 3 non-2xx, 1 errors in 5000 requests \|/)
  t.match(table({ ...report, figures: [{ ...figure, loads: { requests: 5000, non2xx: 0, errors: 0 } }] }), /\| b \| 0\.900× \| – \| ≥ 0\.9× \| no \|/)
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
  t.match(table(report), /\| F \| w \| 0 failed \(0–0\) of 25000 requests per run · 0% \| 10 failed \(5–15\) of 25000 requests per run · 0\.0400% \| b \| – \| – \| ours 0 \| yes \|/)
  t.equal(failureFigure({ ...spec, ours: [run(1, 0, 30_000)] }).met, false, 'one failure misses the target')
  t.equal(failureFigure({ ...spec, ours: [run(0, 0, 19_999)] }).met, false, 'so does a run that was too small')
  t.equal(failureFigure({ ...spec, ours: [run(0, 0, 19_999)], minRequests: undefined }).met, true, 'any size will do without minRequests')
})

t.test('--check fails on a target that reads "no" or an invalid figure, not on inconclusive or met', async (t) => {
  const { failsCheck } = await import('../src/scenario.js')
  const f = { id: 'T', what: 'w', unit: 'req/s', ours: s(1), baseline: s(1), baselineName: 'b', ratio: 1, target: 't' }
  t.equal(failsCheck({ ...f, met: false }), true)
  t.equal(failsCheck({ ...f, met: false, verdict: 'no' }), true)
  t.equal(failsCheck({ ...f, met: false, verdict: 'inconclusive (noise ±9 %)' }), false)
  t.equal(failsCheck({ ...f, met: true, verdict: 'met' }), false)
  t.equal(failsCheck({ ...f, met: undefined }), false)
  t.equal(failsCheck({ ...f, met: true, loads: { requests: 1, non2xx: 1, errors: 0 } }), true)
})

t.test('sized: the smoke value in a smoke run, the real one otherwise', async (t) => {
  const { sized } = await import('../src/scenario.js')
  t.equal(sized({ rounds: 1, smoke: true, log: () => {} }, 1, 5), 1)
  t.equal(sized({ rounds: 3, smoke: false, log: () => {} }, 1, 5), 5)
})

t.test('cpuModel: the first CPU\'s model, or unknown where the platform lists none', async (t) => {
  const { cpuModel } = await import('../src/run.js')
  t.equal(cpuModel([{ model: ' Some CPU  ' }]), 'Some CPU')
  t.equal(cpuModel([]), 'unknown')
})

t.test('selectScenarios: every scenario without ids, the asked ones in the registry\'s order, unknown ids refused', async (t) => {
  const { selectScenarios } = await import('../src/run.js')
  const { scenarios } = await import('../src/scenarios/index.js')
  t.same(selectScenarios([]).map((s) => s.id), scenarios.map((s) => s.id), '`pnpm bench` alone runs them all')
  t.same(selectScenarios(['p8', 'P2']).map((s) => s.id), ['P2', 'P8'], 'ids are case-insensitive; the order is the registry\'s')
  t.throws(() => selectScenarios(['P2', 'P99']), { message: /unknown scenario P99; known: P1, P2/ })
})
