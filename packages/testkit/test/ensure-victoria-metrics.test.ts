import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { script } from './fixtures/scripts.js'
import { ensureVictoriaMetrics, VictoriaMetricsNotFoundError } from '../src/index.js'

// Where the binary comes from. The real fetch runs in `cli.js ensure` (pnpm test) and is used by
// apps/gateway/test/scrape.test.ts; here stand-in apt-get/dpkg-deb record what they are asked.

const sources = { 'sources.list': 'deb http://mirror.example/debian bookworm main\n' }

t.test('VICTORIA_METRICS_BIN, then PATH, then the cache', async (t) => {
  const dir = t.testdir()
  const own = await script(dir, 'my-vm')
  t.equal(await ensureVictoriaMetrics({ env: { VICTORIA_METRICS_BIN: own, PATH: '' } }), own)
  await t.rejects(ensureVictoriaMetrics({ env: { VICTORIA_METRICS_BIN: join(dir, 'nope') } }), { code: 'REG_TESTKIT_NO_VICTORIA_METRICS', message: /VICTORIA_METRICS_BIN=/ })
  const onPath = await script(join(dir, 'bin'), 'victoria-metrics')
  t.equal(await ensureVictoriaMetrics({ env: { PATH: join(dir, 'bin') }, cacheDir: join(dir, 'cache') }), onPath)
  const cached = await script(join(dir, 'cache', 'root', 'usr', 'bin'), 'victoria-metrics')
  t.equal(await ensureVictoriaMetrics({ env: { PATH: '' }, cacheDir: join(dir, 'cache') }), cached)
  t.equal(await ensureVictoriaMetrics({ env: { PATH: '', REG_VICTORIA_METRICS_CACHE: join(dir, 'cache') } }), cached, 'REG_VICTORIA_METRICS_CACHE names the cache')
})

t.test('nothing can provide it: the error says what is missing and what to do', async (t) => {
  const dir = t.testdir({ apt: { 'sources.list.d': {} } })
  const err = await ensureVictoriaMetrics({ env: { PATH: '' }, cacheDir: join(dir, 'cache') }).catch((e: unknown) => e)
  t.ok(err instanceof VictoriaMetricsNotFoundError)
  t.match(err, { code: 'REG_TESTKIT_NO_VICTORIA_METRICS', message: /no apt-get\/dpkg-deb[\s\S]*VICTORIA_METRICS_BIN/ })
  const bins = join(dir, 'bin')
  await script(bins, 'apt-get')
  await script(bins, 'dpkg-deb')
  await t.rejects(ensureVictoriaMetrics({ env: { PATH: bins }, cacheDir: join(dir, 'cache'), aptDir: join(dir, 'apt') }), { message: /no Debian mirror/ })
})

t.test('apt failing, or downloading nothing, is reported with what apt said', async (t) => {
  const dir = t.testdir({ apt: sources })
  const failing = join(dir, 'failing')
  await script(failing, 'apt-get', 'echo "E: could not resolve mirror" >&2; exit 100')
  await script(failing, 'dpkg-deb')
  await t.rejects(ensureVictoriaMetrics({ env: { PATH: failing }, cacheDir: join(dir, 'cache'), aptDir: join(dir, 'apt') }), { message: /could not resolve mirror/ })
  const empty = join(dir, 'empty')
  await script(empty, 'apt-get')
  await script(empty, 'dpkg-deb')
  await t.rejects(ensureVictoriaMetrics({ env: { PATH: empty }, cacheDir: join(dir, 'cache'), aptDir: join(dir, 'apt') }), { message: /produced no \.deb/ })
})

t.test('fetch: apt pointed at private folders, bookworm by default, the .deb unpacked into the cache', async (t) => {
  const dir = t.testdir({ apt: sources })
  const bins = join(dir, 'bin')
  const calls = join(dir, 'calls.log')
  await script(bins, 'apt-get', `echo "apt-get $*" >> ${calls}\ncase "$*" in *download*) : > victoria-metrics_1.79.5_amd64.deb ;; esac`)
  await script(bins, 'dpkg-deb', `echo "dpkg-deb $*" >> ${calls}\n/bin/mkdir -p "$3/usr/bin" && printf '#!/bin/sh\\n' > "$3/usr/bin/victoria-metrics" && /bin/chmod +x "$3/usr/bin/victoria-metrics"`)
  const lines: string[] = []
  const bin = await ensureVictoriaMetrics({ env: { PATH: bins }, cacheDir: join(dir, 'cache'), aptDir: join(dir, 'apt'), log: (l) => lines.push(l) })
  t.equal(bin, join(dir, 'cache', 'root', 'usr', 'bin', 'victoria-metrics'))
  const log = await readFile(calls, 'utf8')
  t.match(log, /Dir::Etc::SourceParts=\/dev\/null/, 'the system source parts are ignored')
  t.match(log, / download victoria-metrics\n/)
  t.match(lines[0], /Debian bookworm via http:\/\/mirror\.example/)
  t.match(lines.at(-1), /ready at/)
  t.equal(await ensureVictoriaMetrics({ env: { PATH: bins }, cacheDir: join(dir, 'cache2'), aptDir: join(dir, 'apt'), suite: 'trixie' }), join(dir, 'cache2', 'root', 'usr', 'bin', 'victoria-metrics'), 'no log callback needed')
  t.match(await readFile(calls, 'utf8'), /cache2\/fetch-/)
  // Without aptDir the system's own /etc/apt is read; whatever it names, a stand-in apt that fails fails cleanly.
  const failing = join(dir, 'failing')
  await script(failing, 'apt-get', 'exit 100')
  await script(failing, 'dpkg-deb')
  await t.rejects(ensureVictoriaMetrics({ env: { PATH: failing }, cacheDir: join(dir, 'cache3') }), { code: 'REG_TESTKIT_NO_VICTORIA_METRICS' })
})

t.test('with no options: the process environment and the project cache (what the scrape test uses)', async (t) => {
  const bin = await ensureVictoriaMetrics()
  t.match(bin, /victoria-metrics$/)
})
