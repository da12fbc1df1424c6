#!/usr/bin/env node
// `pnpm test:profile`: where the last `pnpm test` spent its time, read from what it left behind (tap's saved
// results per test file, turbo's run summaries per task), slowest first. Nothing is timed here: the figures
// are tap's own `# time=` for each file and turbo's start/end for each task, so they are the run's, not a
// re-run's. Run it after `pnpm test` (or after one package's `npx tap`).
//
//   node scripts/test-profile.mjs [--root DIR] [--top N]
import { readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { tapFiles, turboTasks, workspacePackages } from './ci-summary.mjs'

/** tap's top-level `# time=…ms` of one saved results file (the file's own wall time), or undefined. */
export function fileTime (text) {
  const match = /^# time=([\d.]+)ms\s*$/m.exec(text.split('\n').filter((line) => !line.startsWith(' ')).join('\n'))
  return match ? Number(match[1]) : undefined
}

/** Every saved test file's wall time, slowest first: `{ package, file, ms }`; `file` keeps the Node-version folder of extra runs. */
export function fileTimes (root) {
  const rows = []
  for (const pkg of workspacePackages(root)) {
    const dir = join(root, pkg, '.tap')
    for (const path of tapFiles(dir)) {
      const ms = fileTime(readFileSync(path, 'utf8'))
      if (ms !== undefined) rows.push({ package: pkg, file: relative(dir, path).replace(/^test-results\//, '').replace(/\.tap$/, ''), ms })
    }
  }
  return rows.sort((a, b) => b.ms - a.ms)
}

/** Every turbo task of the last runs with its wall time, slowest first: `{ task, ms }`. */
export function taskTimes (root) {
  return turboTasks(root)
    .filter((t) => t.execution?.endTime > t.execution?.startTime)
    .map((t) => ({ task: t.taskId, ms: t.execution.endTime - t.execution.startTime }))
    .sort((a, b) => b.ms - a.ms)
}

const seconds = (ms) => (ms / 1000).toFixed(1).padStart(7)

export function render (root, top = 25) {
  const files = fileTimes(root)
  const tasks = taskTimes(root)
  const lines = []
  if (tasks.length > 0) {
    lines.push('turbo tasks (wall s)')
    for (const t of tasks.slice(0, top)) lines.push(`${seconds(t.ms)}  ${t.task}`)
    lines.push('')
  }
  lines.push(`test files (wall s, tap's own time; ${files.length} files, ${seconds(files.reduce((s, r) => s + r.ms, 0)).trim()} s summed over parallel jobs)`)
  for (const r of files.slice(0, top)) lines.push(`${seconds(r.ms)}  ${r.package}/${r.file}`)
  if (files.length > top) lines.push(`        … ${files.length - top} more (--top ${files.length})`)
  if (files.length === 0 && tasks.length === 0) lines.push('nothing to profile: run `pnpm test` (or `npx tap` in a package) first')
  return lines.join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { root: { type: 'string' }, top: { type: 'string', default: '25' } } })
  console.log(render(values.root ?? fileURLToPath(new URL('..', import.meta.url)), Number(values.top)))
}
