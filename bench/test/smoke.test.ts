import t from 'tap'
import { runBench, table } from '../src/run.js'
import { scenarios } from '../src/scenarios/index.js'

// One short round of every scenario but those test/controls.test.ts (P1, P6, P10), test/recovery.test.ts (P23, R20) and test/tail.test.ts (P16–P18) run, so the harness
// cannot rot. No figure is judged here: benchmarks are not tests, and wall-clock numbers on a shared CI
// box mean nothing. What is checked is the harness: shapes, counts, and the negative control of P12.
t.test('every other scenario runs one smoke round and reports finite figures', async (t) => {
  const lines: string[] = []
  const ids = ['P2', 'P3', 'P4', 'P5', 'P7', 'P8', 'P9', 'P11', 'P12', 'P13', 'P14', 'P22']
  const report = await runBench({ ids, rounds: 1, smoke: true, log: (l) => lines.push(l) })
  t.same([...new Set(report.figures.map((f) => f.id))], ids, 'every scenario asked for yields figures')
  t.same([...ids, 'P1', 'P6', 'P10', 'P16', 'P17', 'P18', 'P23', 'R20'].sort(), scenarios.map((s) => s.id).sort(), 'with the control run, test/recovery.test.ts and test/tail.test.ts, every registered scenario')
  for (const f of report.figures) {
    t.ok(Number.isFinite(f.ours.median) && Number.isFinite(f.baseline.median), `${f.id} ${f.what}: finite medians`)
    // Failure counts carry the requests behind them instead of a ratio; every other figure has a finite ratio.
    if (f.requests) t.ok(f.ratio === null && f.requests.ours.min > 0 && f.requests.baseline.min > 0, `${f.id}: counts with their requests`)
    else t.ok(Number.isFinite(f.ratio), `${f.id} ${f.what}: finite ratio`)
    t.ok(f.met === undefined || typeof f.met === 'boolean')
    t.ok(f.windows && f.windows.length >= 2 && f.windows.every((w) => Number.isFinite(w.value)), `${f.id} ${f.what}: every window's absolute figure is kept`)
  }
  t.ok(report.loadavg && report.loadavg.start.length === 3 && report.loadavg.end.length === 3, 'the load average at the start and the end')
  // Throughput figures say what their loads saw, and carry their A/A control.
  for (const f of report.figures.filter((f) => f.unit === 'req/s')) {
    t.ok(f.loads && f.loads.requests > 0, `${f.id} ${f.what}: load counts`)
    t.ok(f.aa && f.aa.samples.length === 2 && f.aa.samples.every(Number.isFinite), `${f.id} ${f.what}: A/A ratios`)
    t.ok(f.windows!.filter((w) => w.side === 'ours').length === 2 && f.windows!.every((w) => w.loadavg.length === 3), `${f.id} ${f.what}: ABBA windows with their load average`)
  }
  t.same(report.figures.filter((f) => f.id === 'P2' || f.id === 'P3' || f.id === 'P9').map((f) => f.what.replace(/ \([^)]*\)$/, '')), [
    'pick() with 3 instances',
    'pick() with 1000 instances',
    'reply-from proxy, discovery of 1 upstream',
    'reply-from proxy, discovery over 3 upstreams',
    'agent restart → in ?passing again, HTTP check',
    'agent restart → in ?passing again, TTL check'
  ])
  t.match(report.figures.find((f) => f.what.includes('over 3 upstreams'))!.baselineName, /BalancedPool over the same 3 upstreams/)
  t.same(report.figures.filter((f) => f.id === 'P11').map((f) => f.unit), ['failed', 'ms'])
  // P11's negative control loses the outage's requests only when the outage outlasts its 60 s staleTtl,
  // which a smoke round does not; what is checked is that both sides really ran through the same outage.
  const p11 = report.figures.find((f) => f.id === 'P11')!
  t.ok(p11.requests!.ours.min > 0 && p11.requests!.baseline.min > 0, 'P11: both gateways were under load during the outage')
  // P12's negative control: the old discovery failed every request, so the replicas really were all critical.
  const p12 = report.figures.find((f) => f.id === 'P12')!
  t.ok(p12.baseline.min > 0 && p12.baseline.min === p12.requests!.baseline.min, 'P12: with every replica critical the old discovery served nothing')
  t.match(table(report), /\| id \| what \|.*\| A\/A null control \|/)
  t.match(report.machine.consul, /Consul v/)
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
})
