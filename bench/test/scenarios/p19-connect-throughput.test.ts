import t from 'tap'
import { checkAaRow, smoke } from '../fixtures/smoke.js'

// P19's invariants: its keep-alive ratio carries the A/A control, its loads over mTLS were all answered
// 200 (a refused handshake or a 401/403 would make the figure "invalid", so a passing round shows the
// client certificate was accepted and authorized), the same caller without its certificate is refused
// (else the load was not over mutual TLS), and the new-connection p50/p99 rows exist.
t.test('P19 runs one smoke round: mTLS req/s with its A/A control, the handshake p50 and p99', async (t) => {
  const lines: string[] = []
  const report = await smoke(t, 'P19', lines)
  t.ok(lines.some((l) => /^P19 negative control: a caller without a client certificate is refused \(.+\)$/.test(l)), 'the same caller without its certificate is refused')
  const [rate, split] = report.figures.filter((f) => f.unit === 'req/s')
  checkAaRow(t, report, rate!)
  t.equal(rate!.loads!.non2xx + rate!.loads!.errors, 0, 'every request over mTLS and plain HTTP was answered 2xx')
  t.ok(split!.aa!.samples.length === 2 && split!.loads!.requests > 0 && split!.loads!.non2xx + split!.loads!.errors === 0, 'the split against mTLS without authorization: its A/A control, every request 2xx')
  t.equal(split!.target, '–', 'the split is no target of the issue\'s')
  t.same(report.figures.filter((f) => f.unit === 'ms').map((f) => f.what.replace(/ \(.*\)$/, '')), [
    'new connection → answer, mTLS handshake included, p50',
    'new connection → answer, mTLS handshake included, p99'
  ])
})
