// pnpm test:unit: which files count as unit tests, and the runner over a fixture workspace whose tap is a stand-in.
import { execFile } from 'node:child_process'
import { chmodSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { unitFiles } from '../test-unit.mjs'

const run = promisify(execFile)
const script = new URL('../test-unit.mjs', import.meta.url).pathname

function workspace (t, tapExit = { plugin: 0, app: 0 }) {
  const tap = (code) => `#!/bin/sh\necho "tap $*"\nexit ${code}\n`
  const root = t.testdir({
    'pnpm-workspace.yaml': 'packages:\n  - packages/*\n  - apps/*\n',
    packages: {
      plugin: {
        'package.json': JSON.stringify({ scripts: { test: 'tap' } }),
        node_modules: { '.bin': { tap: tap(tapExit.plugin) } },
        src: { 'spawns.ts': "import { spawn } from 'node:child_process'\nexport const x = spawn\n", 'pure.ts': 'export const y = 1\n' },
        test: {
          'pure.test.ts': "import { y } from '../src/pure.js'\n",
          'agent.test.ts': "import { startConsul } from '@reg/testkit'\n",
          'through-fixture.test.ts': "import { a } from './fixtures/a.js'\n",
          'through-src.test.ts': "import { x } from '../src/spawns.js'\n",
          'cycle.test.ts': "import { c } from './fixtures/c.js'\n",
          fixtures: { 'a.ts': "import { b } from './b.js'\n", 'b.ts': "import { execFile } from 'node:child_process'\n", 'c.ts': "import { c } from './c.js'\n" }
        }
      },
      testkit: { 'package.json': JSON.stringify({ scripts: { test: 'tap' } }), test: { 'x.test.ts': '' } },
      untested: { 'package.json': '{}' }
    },
    apps: { app: { 'package.json': JSON.stringify({ scripts: { test: 'tap' } }), node_modules: { '.bin': { tap: tap(tapExit.app) } }, test: { 'b.test.mjs': '', 'helper.ts': '' } } }
  })
  for (const pkg of ['packages/plugin', 'apps/app']) chmodSync(join(root, pkg, 'node_modules/.bin/tap'), 0o755)
  return root
}

t.test('unit files: no testkit, no child process, directly or through anything the file imports', async (t) => {
  t.same(unitFiles(workspace(t)), [
    { package: 'apps/app', files: ['test/b.test.mjs'] },
    { package: 'packages/plugin', files: ['test/cycle.test.ts', 'test/pure.test.ts'] }
  ], 'the testkit is left out whole; an import cycle ends')
})

t.test('--list prints them; a run calls tap per package and fails if one does', async (t) => {
  const { stdout } = await run(process.execPath, [script, '--root', workspace(t), '--list'])
  t.same(stdout.trim().split('\n'), ['apps/app/test/b.test.mjs', 'packages/plugin/test/cycle.test.ts', 'packages/plugin/test/pure.test.ts'])
  const ok = await run(process.execPath, [script, '--root', workspace(t)])
  t.match(ok.stdout, /tap --disable-coverage --reporter=terse test\/cycle\.test\.ts test\/pure\.test\.ts/)
  await t.rejects(run(process.execPath, [script, '--root', workspace(t, { plugin: 1, app: 0 })]), { code: 1 }, 'a failing package fails the run')
})
