// The CI summary over saved outputs of real runs. The fixtures are what tap and turbo wrote, copied unchanged:
// test/fixtures/*.tap are tap 21's saved results of the files in test/fixtures/sources/ (crashed.js killed
// itself), coverage-summary-functions-50.json is its json-summary report for them, and turbo-run-*.json are
// turbo 2.11 run summaries (`--summarize`) of a two-package workspace, packages/plugin and apps/app.
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { clean, countTap, summarize, workspacePackages } from '../ci-summary.mjs'

const run = promisify(execFile)
const fixture = (name) => readFileSync(new URL(`fixtures/${name}`, import.meta.url), 'utf8')
const script = new URL('../ci-summary.mjs', import.meta.url).pathname

/** The fixture workspace: `plugin` and `app` are what each package's `.tap/` holds (plugin has none by default). */
function workspace (t, { turbo = [], plugin, app = {}, root = {} } = {}) {
  const runs = Object.fromEntries(turbo.map((name) => [name, fixture(name)]))
  return t.testdir({
    'pnpm-workspace.yaml': "packages:\n  - packages/*\n  - 'apps/*' # quoted, with a comment\n\ncatalog:\n  - not/a-package\n",
    packages: {
      plugin: { 'package.json': JSON.stringify({ name: '@fx/plugin', scripts: { test: 'tap' } }), ...(plugin && { '.tap': plugin }) },
      'not-a-package': { 'README.md': 'no package.json' }
    },
    apps: { app: { 'package.json': JSON.stringify({ name: '@fx/app', scripts: { test: 'tap' } }), '.tap': app } },
    ...(turbo.length && { '.turbo': { runs } }),
    ...root
  })
}
const results = (files) => ({ 'test-results': { test: Object.fromEntries(Object.entries(files).map(([name, f]) => [name, fixture(f)])) } })

t.test('a green run: every result passes, every step exited 0', async (t) => {
  const root = workspace(t, { turbo: ['turbo-run-passed.json'], plugin: results({ 'a.test.ts.tap': 'passing.tap' }), app: results({ 'b.test.ts.tap': 'passing.tap' }) })
  t.same(summarize(root), { passed: 4, failed: 0, skipped: 0, todo: 0, lines: [] })
})

t.test('a failing assertion counts once, with where it is; its failed test step is not counted again', async (t) => {
  const root = workspace(t, {
    turbo: ['turbo-run-typecheck-and-test-failed.json'],
    plugin: results({ 'a.test.ts.tap': 'failing-assertion.tap' })
  })
  const s = summarize(root)
  t.equal(s.passed, 2, 'the two passing assertions beside it')
  t.same(s.lines, [
    'not ok packages/plugin/.tap/test-results/test/a.test.ts.tap: users',
    'not ok apps/app: typecheck failed (exit 2)'
  ])
  t.equal(s.failed, 2)
})

t.test('a coverage gate: results all pass, the test step failed, tap\'s report names the metric', async (t) => {
  const root = workspace(t, {
    turbo: ['turbo-run-typecheck-and-test-failed.json'],
    plugin: { ...results({ 'a.test.ts.tap': 'passing.tap' }), report: { 'coverage-summary.json': fixture('coverage-summary-functions-50.json') } }
  })
  const s = summarize(root)
  t.equal(s.passed, 2)
  t.same(s.lines, ['not ok apps/app: typecheck failed (exit 2)', 'not ok packages/plugin: coverage gate (functions 50%)'])
  t.equal(s.failed, 2)
})

t.test('a coverage gate fails beside a failing test: both count', async (t) => {
  const root = workspace(t, {
    turbo: ['turbo-run-typecheck-and-test-failed.json'],
    plugin: { ...results({ 'a.test.ts.tap': 'failing-assertion.tap' }), report: { 'coverage-summary.json': fixture('coverage-summary-functions-50.json') } }
  })
  t.equal(summarize(root).failed, 3, 'the assertion, the gate and the app\'s typecheck')
})

t.test('a test step that failed with no result and no report (tap itself) still counts', async (t) => {
  const root = workspace(t, { turbo: ['turbo-run-typecheck-and-test-failed.json'] })
  t.same(summarize(root).lines, ['not ok apps/app: typecheck failed (exit 2)', 'not ok packages/plugin: test failed (exit 1) without a failing test result'])
})

t.test('negative control: the same results without the run summaries would be a lie, so they count as never run', async (t) => {
  const root = workspace(t, { plugin: results({ 'a.test.ts.tap': 'passing.tap' }) })
  const s = summarize(root)
  t.same(s.lines, ['not ok apps/app: its tests never ran', 'not ok packages/plugin: its tests never ran'])
  t.equal(s.failed, 2)
})

t.test('skipped and todo tests are reported, neither passed nor failed', async (t) => {
  const root = workspace(t, { turbo: ['turbo-run-passed.json'], app: results({ 's.test.ts.tap': 'skipped.tap' }) })
  t.same(summarize(root), { passed: 1, failed: 0, skipped: 1, todo: 2, lines: ['apps/app/.tap/test-results/test/s.test.ts.tap: 1 skipped, 2 todo'] })
})

t.test('a results file that ends early (the test process died) is a failure', async (t) => {
  const root = workspace(t, { turbo: ['turbo-run-passed.json'], app: results({ 'c.test.ts.tap': 'crashed.tap' }) })
  const s = summarize(root)
  t.equal(s.passed, 1)
  t.same(s.lines, ['not ok apps/app/.tap/test-results/test/c.test.ts.tap: ended after 1 of 3 planned results'])
})

t.test('results copied from runs on other Node versions count; tap\'s testdir fixtures do not', async (t) => {
  const root = workspace(t, {
    turbo: ['turbo-run-passed.json'],
    plugin: {
      ...results({ 'a.test.ts.tap': 'passing.tap' }),
      node22: results({ 'a.test.ts.tap': 'failing-assertion.tap' }),
      node24: { 'test-results': { deeper: { 'a.test.ts.tap': fixture('passing.tap') } } },
      fixtures: { 'a-test': { 'x.tap': fixture('failing-assertion.tap') } }
    }
  })
  const s = summarize(root)
  t.equal(s.passed, 2 + 2 + 2)
  t.same(s.lines, ['not ok packages/plugin/.tap/node22/test-results/test/a.test.ts.tap: users'])
})

t.test('a non-zero test line with nothing else failing is a failure (e.g. a step turbo does not know)', async (t) => {
  const root = workspace(t, { turbo: ['turbo-run-passed.json'] })
  t.same(summarize(root, { exitCode: 1 }).lines, ['not ok the test line exited 1, and no step says why'])
  t.equal(summarize(root, { exitCode: 0 }).failed, 0)
})

t.test('a task turbo never executed counts', async (t) => {
  const run = JSON.parse(fixture('turbo-run-passed.json'))
  const lint = run.tasks.find((task) => task.taskId === '//#lint')
  delete lint.execution
  const root = workspace(t, { root: { '.turbo': { runs: { 'r.json': JSON.stringify(run) } } } })
  t.same(summarize(root).lines, ['not ok (the repository root): lint did not run'])
})

t.test('the last run of a task wins', async (t) => {
  // The failed run started first, the passing one after it.
  const root = workspace(t, { turbo: ['turbo-run-typecheck-and-test-failed.json', 'turbo-run-passed.json'] })
  t.equal(summarize(root).failed, 0)
})

t.test('countTap', async (t) => {
  t.same(countTap(fixture('failing-assertion.tap')), { passed: 2, failed: 1, skipped: 0, todo: 0, failures: ['users'] }, 'indented subtest lines are not counted twice')
  t.same(countTap('TAP version 14\nok 1 - a\nBail out! no database\nok 2 - b\n'), { passed: 1, failed: 1, skipped: 0, todo: 0, failures: ['Bail out! no database'] })
  t.same(countTap('TAP version 14\nok 1 - a\n'), { passed: 1, failed: 1, skipped: 0, todo: 0, failures: ['ended without a plan (the test process died?)'] })
  t.same(countTap('TAP version 14\n1..0 # SKIP no consul\n').failed, 0, 'a file skipped as a whole')
  t.same(countTap('ok 1 - a \\# SKIP is text here\nnot ok 2 - b # TODO later\nnot ok 3 - c # skip\n1..3\n'), { passed: 1, failed: 0, skipped: 1, todo: 1, failures: [] })
})

t.test('workspacePackages reads pnpm-workspace.yaml', async (t) => {
  const root = workspace(t, { root: { 'pnpm-workspace.yaml': 'packages:\n  - packages/*\n  - bench\n', bench: { 'package.json': '{}' } } })
  t.same(workspacePackages(root), ['bench', 'packages/plugin'])
})

t.test('the command line', async (t) => {
  const root = workspace(t, { turbo: ['turbo-run-typecheck-and-test-failed.json'], app: results({ 's.test.ts.tap': 'skipped.tap' }) })
  const err = await run(process.execPath, [script, '--root', root, '--exit-code', '2']).catch((e) => e)
  t.equal(err.code, 1, 'exits 1 when anything failed')
  const lines = err.stdout.trimEnd().split('\n')
  t.equal(lines.at(-1), '1 passed, 2 failed', 'the last line, alone')
  t.equal(lines.at(-2), '1 skipped, 2 todo')

  const green = workspace(t, { turbo: ['turbo-run-passed.json'], app: results({ 'p.test.ts.tap': 'passing.tap' }) })
  const { stdout } = await run(process.execPath, [script, '--root', green])
  t.equal(stdout, '2 passed, 0 failed\n', 'exits 0, one line')

  await run(process.execPath, [script, '--root', root, '--clean'])
  t.notOk(existsSync(join(root, 'apps/app/.tap')), 'every package\'s .tap/ is gone')
  t.notOk(existsSync(join(root, '.turbo/runs')), 'and the run summaries')
  t.ok(existsSync(join(root, 'apps/app/package.json')), 'nothing else')
  clean(root)
  t.pass('cleaning twice is fine')

  // Read-only: this checkout's own leftovers, whatever they are.
  const own = await run(process.execPath, [script]).catch((e) => e)
  t.match(own.stdout, /(^|\n)\d+ passed, \d+ failed\n$/, 'without --root it reads the checkout it belongs to')
})
