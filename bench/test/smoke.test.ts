import { readdirSync } from 'node:fs'
import t from 'tap'
import { runBench, table } from '../src/run.js'
import { scenarios } from '../src/scenarios/index.js'

// Every scenario runs one smoke round in the suite, so the harness cannot rot: each in a file of its own
// under test/scenarios/, named after the scenario's source file, so tap can run them side by side. This
// file checks that none is left out.
t.test('every registered scenario has its smoke round, in a file of its own', async (t) => {
  const sources = readdirSync(new URL('../src/scenarios/', import.meta.url)).filter((f) => f !== 'index.ts' && f.endsWith('.ts')).map((f) => f.replace(/\.ts$/, ''))
  t.same(sources.map((file) => file.split('-')[0]!.toUpperCase()).sort(), scenarios.map((s) => s.id).sort(), 'each scenario\'s source file is named after its id')
  const smoked = readdirSync(new URL('scenarios/', import.meta.url)).map((f) => f.replace(/\.test\.ts$/, ''))
  t.same(smoked.sort(), sources.sort(), 'test/scenarios/ has one file per source file')
})

t.test('an unknown scenario id is an error naming the known ones', async (t) => {
  await t.rejects(runBench({ ids: ['P99'], rounds: 1, smoke: true, log: () => {} }), { message: /unknown scenario P99; known: P1, P2, P3, P4, P5, P6, P7, P8, P9/ })
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

  // --check: exit 1 exactly when a target of the run reads "no" (the run's own report says which).
  const checked = await new Promise<{ code: number | null, stderr: string }>((resolve) => {
    const child = execFile(process.execPath, [new URL('../dist/cli.js', import.meta.url).pathname, '--check', 'P8'], { env: { ...process.env, BENCH_ROUNDS: '1', BENCH_SMOKE: '1', BENCH_RESULTS: dir } }, (_err, _stdout, stderr) => resolve({ code: child.exitCode, stderr }))
  })
  const { check } = await import('../src/run.js')
  const verdict = check(JSON.parse(readFileSync(`${dir}/latest.json`, 'utf8')) as Parameters<typeof check>[0])
  t.equal(checked.code, verdict.code, '--check exits with the code of its report')
  t.match(checked.stderr, /--check: /)

  const bad = await new Promise<{ code: number | null }>((resolve) => {
    const child = execFile(process.execPath, [new URL('../dist/cli.js', import.meta.url).pathname, 'P99'], { env: { ...process.env, BENCH_RESULTS: dir } }, () => resolve({ code: child.exitCode }))
  })
  t.equal(bad.code, 1, 'an unknown scenario exits 1')
})

t.test('--readme puts the table between the bench markers and saves the report it came from', async (t) => {
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
  const saved = JSON.parse(readFileSync(`${dir}/readme.json`, 'utf8')) as Parameters<typeof table>[0]
  t.ok(text.includes(`<!-- bench:start -->\n${table(saved)}<!-- bench:end -->`), 'readme.json renders to the table written')
  writeFileSync(`${dir}/plain.md`, '# no markers\n')
  t.equal(await run(`${dir}/plain.md`), 1, 'a README without markers is an error')

  // --addendum: the run's scenarios become an addendum of the published readme.json, the rest stays.
  const addendum = (...args: string[]): Promise<number | null> => new Promise((resolve) => {
    const child = execFile(process.execPath, [new URL('../dist/cli.js', import.meta.url).pathname, 'P8', ...args], { env: { ...process.env, BENCH_ROUNDS: '1', BENCH_SMOKE: '1', BENCH_RESULTS: dir } }, () => resolve(child.exitCode))
  })
  t.equal(await addendum('--readme', readme, '--addendum'), 0)
  const again = JSON.parse(readFileSync(`${dir}/readme.json`, 'utf8')) as Parameters<typeof table>[0]
  t.same([again.figures.map((f) => f.id), again.addenda?.map((a) => a.figures.map((f) => f.id))], [[], [['P8']]], 'P8 moved to an addendum of the published run')
  t.equal(again.date, saved.date, 'under the published run\'s own provenance')
  t.ok(readFileSync(readme, 'utf8').includes(`<!-- bench:start -->\n${table(again)}<!-- bench:end -->`), 'and the README shows it')
  t.equal(await addendum('--addendum'), 1, '--addendum without --readme is an error')
})
