import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { resultsDir, testOnNode } from '../src/index.js'

// Stand-ins for the Node.js binaries and for tap: they prove which node the suite ran on (PATH order),
// where each run's saved results end up, and that the default runner's results survive. The real
// suites run on the real binaries in CI (`cli.js test-on-node`).

async function script (file: string, body: string): Promise<void> {
  await mkdir(join(file, '..'), { recursive: true })
  await writeFile(file, `#!/bin/sh\n${body}\n`)
  await chmod(file, 0o755)
}

/** Two fake nodes (22 and 24), named by REG_NODE<major>_BIN. */
async function fakeNodes (dir: string): Promise<NodeJS.ProcessEnv> {
  await script(join(dir, 'n22', 'node'), 'echo v22.9.9')
  await script(join(dir, 'n24', 'node'), 'echo v24.9.9')
  return { PATH: '/usr/bin:/bin', REG_NODE22_BIN: join(dir, 'n22', 'node'), REG_NODE24_BIN: join(dir, 'n24', 'node') }
}

/** A package whose `tap` saves one result naming the node it found on PATH, and fails on Node 22. */
async function fakePackage (dir: string, defaultResult?: string): Promise<string> {
  await script(join(dir, 'node_modules', '.bin', 'tap'), [
    'v=$(node --version)',
    'mkdir -p .tap/test-results/test',
    'echo "ok 1 - ran on $v with $*" > .tap/test-results/test/a.test.ts.tap',
    // As tap does even with coverage off: the coverage folder is cleared, processinfo written.
    'rm -rf .tap/coverage && mkdir -p .tap/processinfo && touch .tap/processinfo/run.json',
    'case $v in v22*) exit 1 ;; esac'
  ].join('\n'))
  if (defaultResult !== undefined) {
    await mkdir(join(dir, '.tap', 'test-results', 'test'), { recursive: true })
    await writeFile(join(dir, '.tap', 'test-results', 'test', 'a.test.ts.tap'), defaultResult)
    await mkdir(join(dir, '.tap', 'coverage'), { recursive: true })
    await writeFile(join(dir, '.tap', 'coverage', 'default.json'), '{}')
  }
  return dir
}

const saved = (pkg: string, file = 'test/a.test.ts.tap'): Promise<string> => readFile(join(pkg, '.tap', 'test-results', file), 'utf8')

t.test('each major runs the suite with its node first on PATH; results are filed per major; the default results survive', async (t) => {
  const dir = t.testdir()
  const env = await fakeNodes(dir)
  const a = await fakePackage(join(dir, 'a'), 'ok 1 - default runner\n')
  const b = await fakePackage(join(dir, 'b'))
  // A previous run's results for a major are replaced, not merged.
  await mkdir(resultsDir(a, 24), { recursive: true })
  await writeFile(join(resultsDir(a, 24), 'stale.tap'), 'ok 1 - stale\n')
  const lines: string[] = []

  const runs = await testOnNode({ majors: [22, 24], packages: ['a', 'b'], root: dir, env, tapArgs: ['--bail'], files: { b: ['test/only.test.ts'] }, log: (l) => lines.push(l) })

  t.same(runs, [
    { package: 'a', major: 22, version: '22.9.9', code: 1, ok: false },
    { package: 'a', major: 24, version: '24.9.9', code: 0, ok: true },
    { package: 'b', major: 22, version: '22.9.9', code: 1, ok: false },
    { package: 'b', major: 24, version: '24.9.9', code: 0, ok: true }
  ], 'a failure on one major is reported, and the other majors and packages still run')
  for (const pkg of [a, b]) {
    // b names a subset of its test files; a runs its whole suite.
    const args = pkg === a ? '--disable-coverage --bail' : '--disable-coverage --bail test/only.test.ts'
    t.equal(await readFile(join(resultsDir(pkg, 22), 'test', 'a.test.ts.tap'), 'utf8'), `ok 1 - ran on v22.9.9 with ${args}\n`)
    t.equal(await readFile(join(resultsDir(pkg, 24), 'test', 'a.test.ts.tap'), 'utf8'), `ok 1 - ran on v24.9.9 with ${args}\n`)
    t.same(await readdir(join(pkg, '.tap')), pkg === a ? ['coverage', 'node22', 'node24', 'test-results'] : ['node22', 'node24'], 'nothing held aside or left by the extra runs')
  }
  t.same(await readdir(resultsDir(a, 24)), ['test'], 'the stale result is gone')
  t.equal(await saved(a), 'ok 1 - default runner\n', "the default runner's results are back, untouched")
  t.equal(await readFile(join(a, '.tap', 'coverage', 'default.json'), 'utf8'), '{}', 'and so is its coverage data')
  t.notOk(existsSync(join(b, '.tap', 'test-results')), 'no default results appear where there were none')
  t.match(lines, ['a on Node.js 22.9.9', 'a on Node.js 24.9.9', 'b on Node.js 22.9.9', 'b on Node.js 24.9.9'])
})

t.test('SIGTERM while a suite runs is passed on to tap, and the default results are still put back', async (t) => {
  const dir = t.testdir()
  const env = await fakeNodes(dir)
  const pkg = join(dir, 'slow')
  await script(join(pkg, 'node_modules', '.bin', 'tap'), `touch ${join(dir, 'started')}\nexec sleep 30`)
  await mkdir(join(pkg, '.tap', 'test-results'), { recursive: true })
  await writeFile(join(pkg, '.tap', 'test-results', 'x.tap'), 'ok 1 - default\n')
  // Defaults: packages relative to the project root (absolute here), the process's own environment.
  const before = { ...process.env }
  Object.assign(process.env, env)
  t.teardown(() => { process.env = before })

  const listeners = process.listenerCount('SIGTERM')
  const running = testOnNode({ majors: [24], packages: [pkg] })
  while (!existsSync(join(dir, 'started'))) await sleep(10)
  process.kill(process.pid, 'SIGTERM')
  t.same(await running, [{ package: pkg, major: 24, version: '24.9.9', code: null, ok: false }])
  t.equal(await saved(pkg, 'x.tap'), 'ok 1 - default\n')
  t.equal(process.listenerCount('SIGTERM'), listeners, 'the forwarding listener is removed afterwards')
})

t.test('a package without tap rejects, and its default results are still put back', async (t) => {
  const dir = t.testdir()
  const env = await fakeNodes(dir)
  const pkg = join(dir, 'no-tap')
  await mkdir(join(pkg, '.tap', 'test-results'), { recursive: true })
  await writeFile(join(pkg, '.tap', 'test-results', 'x.tap'), 'ok 1 - default\n')
  // No PATH at all: the node's folder alone is put on it.
  await t.rejects(testOnNode({ majors: [22], packages: ['no-tap'], root: dir, env: { REG_NODE22_BIN: env.REG_NODE22_BIN } }), { code: 'ENOENT' })
  t.equal(await saved(pkg, 'x.tap'), 'ok 1 - default\n')
})
