#!/usr/bin/env node
// `pnpm test:unit`: the inner loop. Runs, package by package, only the test files that need no real
// server: a file is left out when it or a local fixture it imports uses @reg/testkit (real Consul agents,
// clusters, browsers, scrapers, HAProxy) or starts processes (node:child_process), directly or through
// any module of the package it imports. The testkit's own
// tests are all about real servers and are left out whole. No coverage gate: the full `pnpm test` owns it.
//
//   node scripts/test-unit.mjs [--root DIR] [--list]
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { workspacePackages } from './ci-summary.mjs'

const REAL = /from ['"](@reg\/testkit|node:child_process|child_process)['"]/
const LOCAL_IMPORT = /from ['"](\.{1,2}\/[^'"]+)['"]/g

/** Whether `file` or a local module it imports (transitively, within the package) needs a real server or a process. */
export function needsRealServer (file, seen = new Set()) {
  if (seen.has(file)) return false
  seen.add(file)
  const text = readFileSync(file, 'utf8')
  if (REAL.test(text)) return true
  for (const [, spec] of text.matchAll(LOCAL_IMPORT)) {
    // Tests import `.js` names of `.ts` sources; relative imports stay inside the package (its src/ and test/).
    const base = resolve(dirname(file), spec)
    const found = [base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), base].find((p) => existsSync(p) && !p.includes('node_modules'))
    if (found !== undefined && needsRealServer(found, seen)) return true
  }
  return false
}

/** The unit test files of every workspace package that has a `test` script, relative to the package. */
export function unitFiles (root) {
  const out = []
  for (const pkg of workspacePackages(root)) {
    if (pkg === 'packages/testkit') continue
    const manifest = JSON.parse(readFileSync(join(root, pkg, 'package.json'), 'utf8'))
    const dir = join(root, pkg, 'test')
    if (!manifest.scripts?.test || !existsSync(dir)) continue
    const files = readdirSync(dir).filter((f) => /\.test\.m?[jt]s$/.test(f)).map((f) => join(dir, f)).filter((f) => !needsRealServer(f))
    if (files.length > 0) out.push({ package: pkg, files: files.map((f) => relative(join(root, pkg), f)).sort() })
  }
  return out
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { root: { type: 'string' }, list: { type: 'boolean' } } })
  const root = values.root ?? fileURLToPath(new URL('..', import.meta.url))
  let failed = 0
  for (const { package: pkg, files } of unitFiles(root)) {
    if (values.list) {
      for (const f of files) console.log(`${pkg}/${f}`)
      continue
    }
    console.log(`\n== ${pkg}: ${files.length} files`)
    const run = spawnSync(join(root, pkg, 'node_modules', '.bin', 'tap'), ['--disable-coverage', '--reporter=terse', ...files], { cwd: join(root, pkg), stdio: 'inherit' })
    if (run.status !== 0) failed++
  }
  process.exitCode = failed > 0 ? 1 : 0
}
