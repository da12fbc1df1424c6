import t from 'tap'
import { checkAaRow, round } from '../fixtures/smoke.js'

// P1's throughput ratio carries its A/A control: the same server measured against itself, printed beside it.
t.test('P1 runs one smoke round, with its A/A ratios printed beside the ratio', async (t) => {
  const lines: string[] = []
  const report = await round('P1', lines)
  const controlled = report.figures.filter((f) => f.unit === 'req/s')
  t.ok(controlled.length >= 1, 'P1\'s throughput row')
  for (const f of controlled) checkAaRow(t, report, f)
  t.ok(lines.some((l) => /^P1 .*A\/A /.test(l)), 'the log prints the A/A ratios too')
})
