#!/usr/bin/env node
// The CI summary: `N passed, M failed`, alone on the last line, computed from what the run left behind,
// never typed in. M counts
//   - every failing test in the results tap saved for each test file (every `*.tap` under a package's `.tap/`,
//     including the copies made by runs on other Node versions), and a results file that ends early;
//   - every step turbo ran that failed (its run summaries, `turbo run … --summarize`): lint, build, typecheck,
//     and a test step that failed without a failing test, which is the coverage gate (named from tap's
//     json-summary report when there is one) or tap itself;
//   - every package whose tests never ran at all;
//   - and, if nothing above explains it, the test line's own non-zero exit (`--exit-code N`).
// It needs nothing but Node, so it still prints an honest line when `pnpm install` itself failed.
//
//   node scripts/ci-summary.mjs --clean           delete the results of earlier runs (before the run)
//   node scripts/ci-summary.mjs --exit-code N     print the summary; exit 1 if anything failed
//   --root DIR                                     another checkout than this script's
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

/** Folders (relative to root) of the workspace packages named by pnpm-workspace.yaml (`dir` or `dir/*`). */
export function workspacePackages (root) {
  const text = readFileSync(join(root, 'pnpm-workspace.yaml'), 'utf8')
  const globs = []
  let inPackages = false
  for (const line of text.split('\n')) {
    if (/^\S/.test(line)) inPackages = /^packages:/.test(line)
    const entry = inPackages && /^\s+-\s+['"]?([^'"#\s]+)/.exec(line)
    if (entry) globs.push(entry[1])
  }
  const dirs = []
  for (const glob of globs) {
    if (!glob.endsWith('/*')) {
      dirs.push(glob)
      continue
    }
    const parent = glob.slice(0, -2)
    for (const entry of readdirSync(join(root, parent), { withFileTypes: true })) {
      if (entry.isDirectory()) dirs.push(`${parent}/${entry.name}`)
    }
  }
  return dirs.filter((dir) => existsSync(join(root, dir, 'package.json'))).sort()
}

/**
 * Every `*.tap` file under `dir` (a package's `.tap/`), skipping `fixtures/`: that is where tap's
 * `t.testdir()` puts the throwaway folders of tests, and a test about results files keeps some there.
 */
export function tapFiles (dir) {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.tap'))
    .map((e) => join(e.parentPath, e.name))
    .filter((path) => !path.slice(dir.length + 1).startsWith('fixtures/'))
    .sort()
}

/**
 * The top-level results of one saved test file (its assertions and subtests; indented lines belong to a
 * subtest), as tap counts them: `# SKIP` and `# TODO` are neither passed nor failed, whatever their ok. A file
 * without its plan, with fewer results than planned, or that bailed out ended early: one more failure.
 */
export function countTap (text) {
  const counts = { passed: 0, failed: 0, skipped: 0, todo: 0, failures: [] }
  let planned
  let seen = 0
  for (const line of text.split('\n')) {
    const result = /^(not )?ok\b(?:\s+\d+)?(?:\s+-)?\s*(.*)$/.exec(line)
    if (result) {
      seen++
      const directive = /(?<!\\)#\s*(skip|todo)\b/i.exec(result[2])
      const name = result[2].replace(/\s*(?<!\\)#.*$/, '')
      if (directive) counts[directive[1].toLowerCase() === 'skip' ? 'skipped' : 'todo']++
      else if (!result[1]) counts.passed++
      else {
        counts.failed++
        counts.failures.push(name)
      }
      continue
    }
    const plan = /^1\.\.(\d+)/.exec(line)
    if (plan) planned = Number(plan[1])
    if (/^Bail out!/.test(line)) {
      counts.failed++
      counts.failures.push(line)
      return counts
    }
  }
  if (planned === undefined || seen < planned) {
    counts.failed++
    counts.failures.push(planned === undefined ? 'ended without a plan (the test process died?)' : `ended after ${seen} of ${planned} planned results`)
  }
  return counts
}

/** The last execution of each task over every turbo run summary in `.turbo/runs/`, by task id. */
export function turboTasks (root) {
  const dir = join(root, '.turbo', 'runs')
  const runs = existsSync(dir)
    ? readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')))
    : []
  runs.sort((a, b) => a.execution.startTime - b.execution.startTime)
  const tasks = new Map()
  for (const run of runs) for (const task of run.tasks) tasks.set(task.taskId, task)
  return [...tasks.values()]
}

/** Which coverage totals are below 100 % in tap's json-summary report, if it wrote one. */
function incompleteCoverage (pkgDir) {
  const file = join(pkgDir, '.tap', 'report', 'coverage-summary.json')
  if (!existsSync(file)) return []
  const { total } = JSON.parse(readFileSync(file, 'utf8'))
  return ['statements', 'branches', 'functions', 'lines']
    .filter((k) => Number(total[k].pct) < 100)
    .map((k) => `${k} ${total[k].pct}%`)
}

/**
 * Everything that passed and failed in the run whose leftovers are under `root`. `exitCode` is the test
 * line's; a non-zero one with nothing else failing is itself a failure.
 */
export function summarize (root, { exitCode = 0 } = {}) {
  const summary = { passed: 0, failed: 0, skipped: 0, todo: 0, lines: [] }
  const fail = (line) => {
    summary.failed++
    summary.lines.push(`not ok ${line}`)
  }
  const packages = workspacePackages(root)
  const failingTests = new Map()
  for (const pkg of packages) {
    const tapDir = join(root, pkg, '.tap')
    for (const file of tapFiles(tapDir)) {
      const counts = countTap(readFileSync(file, 'utf8'))
      const where = `${pkg}/.tap/${file.slice(tapDir.length + 1)}`
      summary.passed += counts.passed
      summary.skipped += counts.skipped
      summary.todo += counts.todo
      if (counts.skipped || counts.todo) summary.lines.push(`${where}: ${counts.skipped} skipped, ${counts.todo} todo`)
      for (const name of counts.failures) fail(`${where}: ${name}`)
      failingTests.set(pkg, (failingTests.get(pkg) ?? 0) + counts.failed)
    }
  }

  const tasks = turboTasks(root)
  for (const task of tasks) {
    const where = task.directory || '(the repository root)'
    const code = task.execution?.exitCode
    if (code === 0) continue
    const how = code === undefined ? 'did not run' : `failed (exit ${code})`
    if (task.task !== 'test') {
      fail(`${where}: ${task.task} ${how}`)
      continue
    }
    const coverage = incompleteCoverage(join(root, task.directory))
    if (coverage.length) fail(`${where}: coverage gate (${coverage.join(', ')})`)
    else if (!failingTests.get(task.directory)) fail(`${where}: test ${how} without a failing test result`)
  }
  for (const pkg of packages) {
    const { scripts } = JSON.parse(readFileSync(join(root, pkg, 'package.json'), 'utf8'))
    if (scripts?.test && !tasks.some((t) => t.task === 'test' && t.directory === pkg)) fail(`${pkg}: its tests never ran`)
  }
  if (exitCode !== 0 && summary.failed === 0) fail(`the test line exited ${exitCode}, and no step says why`)
  return summary
}

/** Removes what an earlier run left: every package's `.tap/` and turbo's run summaries. */
export function clean (root) {
  for (const pkg of workspacePackages(root)) rmSync(join(root, pkg, '.tap'), { recursive: true, force: true })
  rmSync(join(root, '.turbo', 'runs'), { recursive: true, force: true })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { clean: { type: 'boolean' }, 'exit-code': { type: 'string', default: '0' }, root: { type: 'string' } } })
  const root = values.root ?? fileURLToPath(new URL('..', import.meta.url))
  if (values.clean) {
    clean(root)
  } else {
    const summary = summarize(root, { exitCode: Number(values['exit-code']) })
    for (const line of summary.lines) console.log(line)
    if (summary.skipped || summary.todo) console.log(`${summary.skipped} skipped, ${summary.todo} todo`)
    console.log(`${summary.passed} passed, ${summary.failed} failed`)
    process.exitCode = summary.failed ? 1 : 0
  }
}
