import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { ConsulNotFoundError, debianMirror, ensureConsul } from '../src/index.js'

async function fakeBinary (dir: string, name: string): Promise<string> {
  await mkdir(dir, { recursive: true })
  const file = join(dir, name)
  await writeFile(file, '#!/bin/sh\necho fake\n')
  await chmod(file, 0o755)
  return file
}

t.test('CONSUL_BIN wins over everything else', async (t) => {
  const dir = t.testdir()
  const bin = await fakeBinary(dir, 'my-consul')
  t.equal(await ensureConsul({ env: { CONSUL_BIN: bin, PATH: '' } }), bin)
})

t.test('a CONSUL_BIN that is not executable is a clear error, not a silent fallback', async (t) => {
  await t.rejects(ensureConsul({ env: { CONSUL_BIN: '/nonexistent/consul', PATH: process.env.PATH } }), {
    code: 'REG_TESTKIT_NO_CONSUL',
    message: /CONSUL_BIN=\/nonexistent\/consul is not an executable/
  })
})

t.test('then `consul` on PATH', async (t) => {
  const dir = t.testdir()
  const bin = await fakeBinary(join(dir, 'bin'), 'consul')
  t.equal(await ensureConsul({ env: { PATH: `/nonexistent:${join(dir, 'bin')}` }, cacheDir: join(dir, 'cache') }), bin)
})

t.test('then the project cache', async (t) => {
  const dir = t.testdir()
  const bin = await fakeBinary(join(dir, 'cache', 'root', 'usr', 'bin'), 'consul')
  t.equal(await ensureConsul({ env: { PATH: '' }, cacheDir: join(dir, 'cache') }), bin)
  t.equal(await ensureConsul({ env: { PATH: '', REG_CONSUL_CACHE: join(dir, 'cache') } }), bin, 'REG_CONSUL_CACHE names the cache')
})

t.test('nothing can provide a binary: the error says exactly what to do', async (t) => {
  const dir = t.testdir()
  const err = await ensureConsul({ env: {}, cacheDir: join(dir, 'cache') }).catch((e: unknown) => e)
  t.ok(err instanceof ConsulNotFoundError)
  t.equal((err as ConsulNotFoundError).code, 'REG_TESTKIT_NO_CONSUL')
  const message = (err as Error).message
  t.match(message, /CONSUL_BIN/)
  t.match(message, /brew install consul/)
  t.match(message, /docker compose up consul/)
})

t.test('apt present but no Debian mirror named: clear error', async (t) => {
  const dir = t.testdir({ apt: { 'sources.list.d': {} } })
  const bins = join(dir, 'bin')
  await fakeBinary(bins, 'apt-get')
  await fakeBinary(bins, 'dpkg-deb')
  await t.rejects(ensureConsul({ env: { PATH: bins }, cacheDir: join(dir, 'cache'), aptDir: join(dir, 'apt') }), {
    code: 'REG_TESTKIT_NO_CONSUL',
    message: /no Debian mirror/
  })
})

t.test('a failing apt fetch is reported with its stderr and the help text', async (t) => {
  const dir = t.testdir({ apt: { 'sources.list': 'deb http://mirror.example/debian bookworm main\n' } })
  const bins = join(dir, 'bin')
  await mkdir(bins)
  await writeFile(join(bins, 'apt-get'), '#!/bin/sh\necho "E: could not resolve mirror" >&2\nexit 100\n')
  await chmod(join(bins, 'apt-get'), 0o755)
  await fakeBinary(bins, 'dpkg-deb')
  await t.rejects(ensureConsul({ env: { PATH: bins }, cacheDir: join(dir, 'cache'), aptDir: join(dir, 'apt') }), {
    code: 'REG_TESTKIT_NO_CONSUL',
    message: /could not resolve mirror[\s\S]*brew install consul/
  })
})

t.test('an apt that downloads nothing is an error, not a missing binary later', async (t) => {
  const dir = t.testdir({ apt: { 'sources.list': 'deb http://mirror.example/debian bookworm main\n' } })
  const bins = join(dir, 'bin')
  await fakeBinary(bins, 'apt-get')
  await fakeBinary(bins, 'dpkg-deb')
  await t.rejects(ensureConsul({ env: { PATH: bins }, cacheDir: join(dir, 'cache'), aptDir: join(dir, 'apt') }), {
    code: 'REG_TESTKIT_NO_CONSUL',
    message: /produced no \.deb/
  })
  // Without aptDir the system's own /etc/apt is read; whatever it names, the stand-in apt fails cleanly.
  await t.rejects(ensureConsul({ env: { PATH: bins }, cacheDir: join(dir, 'cache2') }), { code: 'REG_TESTKIT_NO_CONSUL' })
})

t.test('fetch: apt is pointed at private folders and the .deb is unpacked into the cache', async (t) => {
  const dir = t.testdir({ apt: { 'sources.list.d': { 'debian.sources': 'Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n' } } })
  const bins = join(dir, 'bin')
  await mkdir(bins)
  const calls = join(dir, 'calls.log')
  // A stand-in apt-get/dpkg-deb that record their arguments; the real fetch runs in CI via `reg-consul ensure`.
  await writeFile(join(bins, 'apt-get'), `#!/bin/sh\necho "apt-get $*" >> ${calls}\nif [ "$(echo "$*" | grep -c download)" = 1 ]; then touch consul_1.8.7_amd64.deb; fi\n`)
  await writeFile(join(bins, 'dpkg-deb'), `#!/bin/sh\necho "dpkg-deb $*" >> ${calls}\nmkdir -p "$3/usr/bin" && printf '#!/bin/sh\\n' > "$3/usr/bin/consul" && chmod +x "$3/usr/bin/consul"\n`)
  await chmod(join(bins, 'apt-get'), 0o755)
  await chmod(join(bins, 'dpkg-deb'), 0o755)
  const lines: string[] = []
  const bin = await ensureConsul({ env: { PATH: `${bins}:/usr/bin:/bin` }, cacheDir: join(dir, 'cache'), aptDir: join(dir, 'apt'), log: (l) => lines.push(l) })
  t.equal(bin, join(dir, 'cache', 'root', 'usr', 'bin', 'consul'))
  const { readFile } = await import('node:fs/promises')
  const log = await readFile(calls, 'utf8')
  t.match(log, /Dir::Etc::SourceParts=\/dev\/null/, 'the system source parts are ignored')
  t.match(log, /Dir::State::Lists=.*cache\/fetch-/, 'lists live in a private folder')
  t.match(log, / update\n/)
  t.match(log, / download consul\n/)
  t.match(lines[0], /mirror\.example/, 'the mirror comes from the system sources')
})

t.test('debianMirror reads deb822 and one-line sources, skipping the security archive', async (t) => {
  const dir = t.testdir({
    a: { 'sources.list.d': { 'x.sources': 'URIs: http://deb.example/debian-security\n\nURIs: http://deb.example/debian\n' } },
    b: { 'sources.list.d': { 'y.list': '# comment\ndeb [arch=amd64] https://mirror.example/debian bookworm main\n' } },
    c: {}
  })
  t.equal(debianMirror(join(dir, 'a')), 'http://deb.example/debian')
  t.equal(debianMirror(join(dir, 'b')), 'https://mirror.example/debian')
  t.equal(debianMirror(join(dir, 'c')), undefined)
})
