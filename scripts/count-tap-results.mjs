#!/usr/bin/env node
// Counts the results tap saved for every test file (.tap/test-results/**/*.tap) in the workspace and
// prints `N passed, N failed` alone on a line. Each top-level `ok`/`not ok` line of a file is one test;
// the indented lines are its assertions and subtests.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const files = []
function walk (dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) walk(path)
    else if (name.endsWith('.tap')) files.push(path)
  }
}
// Every workspace package: packages/*, apps/* and bench itself.
const dirs = ['bench']
for (const group of ['packages', 'apps']) {
  for (const pkg of readdirSync(join(root, group))) dirs.push(join(group, pkg))
}
for (const dir of dirs) {
  try { walk(join(root, dir, '.tap', 'test-results')) } catch {}
}

let passed = 0
let failed = 0
let skipped = 0
for (const file of files) {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (/^ok \d+/.test(line)) {
      if (/# (SKIP|TODO)/i.test(line)) skipped++
      else passed++
    } else if (/^not ok \d+/.test(line)) {
      failed++
    }
  }
}
console.log(`${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ''))
