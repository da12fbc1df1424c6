import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { script } from './fixtures/scripts.js'
import { CHROMIUM_ARGS, ChromiumNotFoundError, ensureChromium } from '../src/index.js'

// Where the browser comes from. The real install runs in `cli.js ensure` as root (CI) and is used by
// apps/gateway/test/browser.test.ts; here a stand-in apt-get records what it is asked.

t.test('CHROMIUM_BIN, then PATH', async (t) => {
  const dir = t.testdir()
  const own = await script(dir, 'chrome')
  t.equal(await ensureChromium({ env: { CHROMIUM_BIN: own, PATH: '' } }), own)
  await t.rejects(ensureChromium({ env: { CHROMIUM_BIN: join(dir, 'nope') } }), { code: 'REG_TESTKIT_NO_CHROMIUM', message: /CHROMIUM_BIN=/ })
  const found = await script(join(dir, 'bin'), 'chromium')
  t.equal(await ensureChromium({ env: { PATH: join(dir, 'bin') } }), found)
  t.ok(CHROMIUM_ARGS.includes('--headless') && CHROMIUM_ARGS.includes('--no-sandbox'))
})

t.test('not found and not allowed to install: the error says how', async (t) => {
  const dir = t.testdir()
  const err = await ensureChromium({ env: { PATH: '' } }).catch((e: unknown) => e)
  t.ok(err instanceof ChromiumNotFoundError)
  t.match(err, { code: 'REG_TESTKIT_NO_CHROMIUM', message: /no apt-get[\s\S]*apt-get install --no-install-recommends chromium/ })
  await script(join(dir, 'bin'), 'apt-get')
  await t.rejects(ensureChromium({ env: { PATH: join(dir, 'bin') }, install: false }), { message: /needs root/ })
})

t.test('install: apt-get update, then install without recommends; chromium must then be on PATH', async (t) => {
  const dir = t.testdir()
  const bins = join(dir, 'bin')
  const calls = join(dir, 'calls.log')
  await script(bins, 'apt-get', `echo "apt-get $*" >> ${calls}\nif [ "$1" = install ]; then printf '#!/bin/sh\\n' > ${bins}/chromium; /bin/chmod +x ${bins}/chromium; fi`)
  const lines: string[] = []
  t.equal(await ensureChromium({ env: { PATH: bins }, install: true, log: (l) => lines.push(l) }), join(bins, 'chromium'))
  t.equal(await readFile(calls, 'utf8'), 'apt-get update\napt-get install -y --no-install-recommends chromium fonts-dejavu-core\n')
  t.match(lines.at(-1), /ready at/)

  const broken = join(dir, 'broken')
  await script(broken, 'apt-get', 'if [ "$1" = install ]; then echo "E: Unable to locate package chromium" >&2; exit 100; fi')
  await t.rejects(ensureChromium({ env: { PATH: broken }, install: true }), { message: /Unable to locate package/ })
  const silent = join(dir, 'silent')
  await script(silent, 'apt-get')
  await t.rejects(ensureChromium({ env: { PATH: silent }, install: true }), { message: /not on PATH/ })
})

t.test('with no options: the process environment (what cli.js ensure and the browser test use)', async (t) => {
  const found = await ensureChromium().catch((e: unknown) => e)
  // As root it installs when missing, so it is found; as another user without chromium, the coded error.
  t.ok(typeof found === 'string' ? found.endsWith('chromium') || found === process.env.CHROMIUM_BIN : (found as { code?: string }).code === 'REG_TESTKIT_NO_CHROMIUM')
})
