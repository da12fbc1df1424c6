// pnpm test:profile over saved outputs of real runs (the same fixtures as the CI summary's tests).
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import t from 'tap'
import { fileTime, fileTimes, render, taskTimes } from '../test-profile.mjs'

const run = promisify(execFile)
const fixture = (name) => readFileSync(new URL(`fixtures/${name}`, import.meta.url), 'utf8')
const script = new URL('../test-profile.mjs', import.meta.url).pathname

function workspace (t, { plugin = {}, app = {}, turbo = [] } = {}) {
  return t.testdir({
    'pnpm-workspace.yaml': 'packages:\n  - packages/*\n  - apps/*\n',
    packages: { plugin: { 'package.json': '{}', '.tap': plugin } },
    apps: { app: { 'package.json': '{}', '.tap': app } },
    ...(turbo.length && { '.turbo': { runs: Object.fromEntries(turbo.map((name) => [name, fixture(name)])) } })
  })
}

t.test('fileTime reads the top-level time, not a subtest\'s', async (t) => {
  t.equal(fileTime(fixture('failing-assertion.tap')), 48.692)
  t.equal(fileTime('    # time=5ms\nok 1\n'), undefined, 'an indented (subtest) time is not the file\'s')
  t.equal(fileTime(fixture('crashed.tap')), undefined, 'a file that ended early has none')
})

t.test('files slowest first, across packages and Node-version runs; turbo tasks by wall time', async (t) => {
  const root = workspace(t, {
    plugin: { 'test-results': { test: { 'a.test.ts.tap': fixture('passing.tap') } }, node22: { 'test-results': { test: { 'a.test.ts.tap': fixture('failing-assertion.tap') } } } },
    app: { 'test-results': { test: { 'b.test.ts.tap': fixture('skipped.tap') } } },
    turbo: ['turbo-run-passed.json']
  })
  t.same(fileTimes(root).map((r) => [r.package, r.file, r.ms]), [
    ['packages/plugin', 'node22/test-results/test/a.test.ts', 48.692],
    ['packages/plugin', 'test/a.test.ts', 12.762],
    ['apps/app', 'test/b.test.ts', 10.652]
  ])
  const tasks = taskTimes(root)
  t.ok(tasks.length > 0 && tasks.every((x, i) => i === 0 || tasks[i - 1].ms >= x.ms), 'tasks sorted by wall time')
  const text = render(root, 2)
  t.match(text, /turbo tasks/)
  t.match(text, /1 more \(--top 3\)/, 'says how many were cut')
})

t.test('the command prints a hint when nothing ran yet', async (t) => {
  const { stdout } = await run(process.execPath, [script, '--root', workspace(t)])
  t.match(stdout, /nothing to profile/)
})
