import { readFileSync } from 'node:fs'
import t from 'tap'
import { benchSection, withAddendum, withTable } from '../src/readme.js'
import { allFigures, table, type BenchReport } from '../src/run.js'
import { scenarios } from '../src/scenarios/index.js'

const README = new URL('../../README.md', import.meta.url).pathname
const RESULTS = new URL('../results/readme.json', import.meta.url).pathname

// The published figures are auditable: the root README's table is exactly what the committed results
// file renders to. A hand edit of either, or a README refreshed without its results (or the reverse), fails.
t.test('the README\'s performance table is the committed bench/results/readme.json, rendered', async (t) => {
  const report = JSON.parse(readFileSync(RESULTS, 'utf8')) as BenchReport
  t.equal(benchSection(readFileSync(README, 'utf8'), README), table(report))
  t.match(report.commit.sha, /^[0-9a-f]{40}$/, 'names the commit that was measured')
  t.equal(report.commit.dirty, false, 'measured committed code')
  t.ok(report.rounds >= 3, 'a real run, not a smoke round')
  t.match(report.machine, { cores: Number, cpu: String, node: /^v\d+/, consul: /^Consul v/ })
  // Sorted: the addenda come in the order they were run, after the table's own figures.
  t.same([...new Set(allFigures(report).map((f) => f.id))].sort(), scenarios.map((s) => s.id).sort(), 'every scenario, in this run or a separate one after it (addenda)')
})

t.test('withTable replaces only the section between the markers', async (t) => {
  const report = JSON.parse(readFileSync(RESULTS, 'utf8')) as BenchReport
  const text = withTable('# x\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n\nafter\n', 'R.md', report)
  t.equal(text, `# x\n\n<!-- bench:start -->\n${table(report)}<!-- bench:end -->\n\nafter\n`)
  t.equal(benchSection(text, 'R.md'), table(report))
})

t.test('a README without both markers is an error naming the file', async (t) => {
  t.throws(() => benchSection('# no markers\n', 'plain.md'), { message: /plain\.md has no <!-- bench:start --> … <!-- bench:end --> section/ })
  t.throws(() => benchSection('<!-- bench:start -->\nno end\n', 'half.md'), { message: /half\.md/ })
})

t.test('withAddendum: the run\'s scenarios leave the published figures and earlier addenda, and come back as one addendum', async (t) => {
  const report = JSON.parse(readFileSync(RESULTS, 'utf8')) as BenchReport
  const fig = (id: string): BenchReport['figures'][number] => ({ ...report.figures[0]!, id })
  const { addenda: _published, ...base } = report
  const at = (date: string, ids: string[], addenda?: BenchReport[]): BenchReport => ({ ...base, date, figures: ids.map(fig), ...(addenda ? { addenda } : {}) })
  const published = at('main', ['P1', 'P2', 'P19'], [at('old', ['P19']), at('older', ['P22', 'R14'])])
  const next = withAddendum(published, at('new', ['P19', 'R14'], [at('ignored', ['P3'])]))
  t.same(next.figures.map((f) => f.id), ['P1', 'P2'], 'the published run keeps its other rows')
  t.same(next.addenda!.map((a) => [a.date, a.figures.map((f) => f.id)]), [['older', ['P22']], ['new', ['P19', 'R14']]], 'an emptied addendum is dropped; the run comes last')
  t.equal(next.addenda![1]!.addenda, undefined, 'an addendum carries no addenda of its own')
  t.same(allFigures(next).map((f) => f.id).sort(), ['P1', 'P19', 'P2', 'P22', 'R14'], 'every scenario once')
  t.same(withAddendum(at('main', ['P1']), at('new', ['P19'])).addenda!.map((a) => a.date), ['new'], 'a report without addenda gets its first')
})
