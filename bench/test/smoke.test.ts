import t from 'tap'
import { runBench, table } from '../src/run.js'

// One short round of every scenario, so the harness cannot rot. No figure is judged here: benchmarks
// are not tests, and wall-clock numbers on a shared CI box mean nothing.
t.test('every scenario runs one smoke round and reports finite figures', async (t) => {
  const lines: string[] = []
  const report = await runBench({ ids: [], rounds: 1, smoke: true, log: (l) => lines.push(l) })
  t.ok(report.figures.length > 0)
  for (const f of report.figures) {
    t.ok(Number.isFinite(f.ours.median) && Number.isFinite(f.baseline.median), `${f.id}: finite medians`)
    t.ok(Number.isFinite(f.ratio), `${f.id}: finite ratio`)
  }
  t.match(table(report), /\| id \| what \|/)
  t.match(report.machine.consul, /Consul v/)
})

t.test('an unknown scenario id is an error naming the known ones', async (t) => {
  await t.rejects(runBench({ ids: ['P99'], rounds: 1, smoke: true, log: () => {} }), { message: /unknown scenario P99; known: P1, P2, P3, P4, P5, P6, P7, P8/ })
})

t.test('`pnpm bench P8` (the CLI) prints the table and writes latest.json', async (t) => {
  const { execFile } = await import('node:child_process')
  const { readFileSync } = await import('node:fs')
  const dir = t.testdir()
  const out = await new Promise<{ code: number | null, stdout: string }>((resolve) => {
    const child = execFile(process.execPath, [new URL('../dist/cli.js', import.meta.url).pathname, 'P8'], { env: { ...process.env, BENCH_ROUNDS: '1', BENCH_SMOKE: '1', BENCH_RESULTS: dir } }, (_err, stdout) => resolve({ code: child.exitCode, stdout }))
  })
  t.equal(out.code, 0)
  t.match(out.stdout, /\| P8 \|/)
  const saved = JSON.parse(readFileSync(`${dir}/latest.json`, 'utf8')) as { figures: Array<{ id: string }>, machine: { cores: number } }
  t.same(saved.figures.map((f) => f.id), ['P8'])
  t.ok(saved.machine.cores > 0)

  const bad = await new Promise<{ code: number | null }>((resolve) => {
    const child = execFile(process.execPath, [new URL('../dist/cli.js', import.meta.url).pathname, 'P99'], { env: { ...process.env, BENCH_RESULTS: dir } }, () => resolve({ code: child.exitCode }))
  })
  t.equal(bad.code, 1, 'an unknown scenario exits 1')
})

t.test('--readme puts the table between the bench markers', async (t) => {
  const { execFile } = await import('node:child_process')
  const { readFileSync, writeFileSync } = await import('node:fs')
  const dir = t.testdir()
  const readme = `${dir}/README.md`
  writeFileSync(readme, '# x\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n\nafter\n')
  const run = (file: string): Promise<number | null> => new Promise((resolve) => {
    const child = execFile(process.execPath, [new URL('../dist/cli.js', import.meta.url).pathname, 'P8', '--readme', file], { env: { ...process.env, BENCH_ROUNDS: '1', BENCH_SMOKE: '1', BENCH_RESULTS: dir } }, () => resolve(child.exitCode))
  })
  t.equal(await run(readme), 0)
  const text = readFileSync(readme, 'utf8')
  t.match(text, /<!-- bench:start -->\n\| id \| what[\s\S]*\| P8 \|[\s\S]*<!-- bench:end -->\n\nafter\n/)
  t.notMatch(text, /old/)
  writeFileSync(`${dir}/plain.md`, '# no markers\n')
  t.equal(await run(`${dir}/plain.md`), 1, 'a README without markers is an error')
})
