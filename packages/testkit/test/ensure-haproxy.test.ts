import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { ensureHaproxy, HaproxyNotFoundError } from '../src/index.js'

// The real install runs in `pnpm bench` (P10); here stand-in binaries prove the order of the lookups
// and that a failed install is a coded error saying what to do.

async function script (dir: string, name: string, body = 'echo fake'): Promise<string> {
  await mkdir(dir, { recursive: true })
  const file = join(dir, name)
  await writeFile(file, `#!/bin/sh\n${body}\n`)
  await chmod(file, 0o755)
  return file
}

t.test('HAPROXY_BIN wins; one that is not executable is an error, not a fallback', async (t) => {
  const dir = t.testdir()
  const bin = await script(dir, 'my-haproxy')
  t.equal(await ensureHaproxy({ env: { HAPROXY_BIN: bin, PATH: '' }, sbin: [] }), bin)
  await t.rejects(ensureHaproxy({ env: { HAPROXY_BIN: join(dir, 'none') }, sbin: [] }), { code: 'REG_TESTKIT_NO_HAPROXY' })
})

t.test('by default it reads process.env', async (t) => {
  const bin = await script(t.testdir(), 'haproxy')
  const before = process.env.HAPROXY_BIN
  process.env.HAPROXY_BIN = bin
  t.teardown(() => { if (before === undefined) delete process.env.HAPROXY_BIN; else process.env.HAPROXY_BIN = before })
  t.equal(await ensureHaproxy(), bin)
})

t.test('then haproxy on PATH, then in the sbin folders', async (t) => {
  const dir = t.testdir()
  const onPath = await script(join(dir, 'bin'), 'haproxy')
  const inSbin = await script(join(dir, 'sbin'), 'haproxy')
  t.equal(await ensureHaproxy({ env: { PATH: join(dir, 'bin') }, sbin: [join(dir, 'sbin')] }), onPath)
  t.equal(await ensureHaproxy({ env: { PATH: join(dir, 'bin') } }), onPath, 'PATH before the default sbin folders')
  t.equal(await ensureHaproxy({ env: { PATH: '' }, sbin: [join(dir, 'sbin')] }), inSbin)
})

t.test('no haproxy and no apt-get: a coded error naming the ways to provide it', async (t) => {
  const err = await ensureHaproxy({ env: {}, sbin: [] }).catch((e: unknown) => e)
  t.ok(err instanceof HaproxyNotFoundError)
  t.match(err, { code: 'REG_TESTKIT_NO_HAPROXY', message: /HAPROXY_BIN/ })
})

t.test('apt-get without leave to install (not root): a coded error, and apt-get never runs', async (t) => {
  const dir = t.testdir()
  const calls = join(dir, 'calls')
  await script(join(dir, 'bin'), 'apt-get', `echo "$*" >> ${calls}`)
  await t.rejects(ensureHaproxy({ env: { PATH: join(dir, 'bin') }, sbin: [], install: false }), { code: 'REG_TESTKIT_NO_HAPROXY', message: /needs root/ })
  await t.rejects(readFile(calls), { code: 'ENOENT' })
})

t.test('installs with apt-get update + install, then finds the binary it installed', async (t) => {
  const dir = t.testdir()
  const bins = join(dir, 'bin')
  const calls = join(dir, 'calls')
  // A stand-in apt-get that records its arguments and "installs" haproxy into the searched folder.
  await script(bins, 'apt-get', `echo "$*" >> ${calls}\ncase "$*" in *install*) printf '#!/bin/sh\\n' > ${bins}/haproxy; /bin/chmod +x ${bins}/haproxy;; esac`)
  const lines: string[] = []
  t.equal(await ensureHaproxy({ env: { PATH: bins }, sbin: [], install: true, log: (l) => lines.push(l) }), join(bins, 'haproxy'))
  t.same((await readFile(calls, 'utf8')).trim().split('\n'), ['update', 'install -y --no-install-recommends haproxy'])
  t.match(lines, [/installing/, /ready/])
})

t.test('a failed install, or one that leaves no binary, is a coded error', async (t) => {
  const dir = t.testdir()
  await script(join(dir, 'fails'), 'apt-get', 'echo "E: Could not open lock file - are you root?" >&2\nexit 100')
  await t.rejects(ensureHaproxy({ env: { PATH: join(dir, 'fails') }, sbin: [], install: true }), { code: 'REG_TESTKIT_NO_HAPROXY', message: /are you root/ })
  await script(join(dir, 'silent'), 'apt-get', 'exit 100')
  await t.rejects(ensureHaproxy({ env: { PATH: join(dir, 'silent') }, sbin: [], install: true }), { code: 'REG_TESTKIT_NO_HAPROXY', message: /Command failed/ })
  await script(join(dir, 'noop'), 'apt-get', 'exit 0')
  await t.rejects(ensureHaproxy({ env: { PATH: join(dir, 'noop') }, sbin: [], install: true }), { code: 'REG_TESTKIT_NO_HAPROXY', message: /exited 0/ })
})
