import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Type } from '@sinclair/typebox'
import t from 'tap'
import { readPrefix } from '../src/config/kv-read.js'
import { KnownGoodFile } from '../src/config/last-known-good.js'
import { LiveConfig } from '../src/config/live-config.js'
import { normalizeConfigOptions } from '../src/config/options.js'
import { consulHttp } from './fixtures/discovery-consul.js'
import { recordingLogger } from './fixtures/discovery-logger.js'
import { faultServer } from './fixtures/discovery-fault-server.js'

// What a real agent will not do on demand: malformed KV answers, a file system that refuses the
// last-known-good file, a listener that throws.

const kvBody = (pairs: Record<string, string>): string => JSON.stringify(Object.entries(pairs).map(([Key, v]) => ({ Key, Value: Buffer.from(v).toString('base64') })))

t.test('readPrefix: a body that is not JSON, or not a list, is a coded bad response; other statuses are HTTP errors', async (t) => {
  const replies = [{ body: 'oops' }, { body: '{}' }, { status: 500, body: 'boom' }, { body: JSON.stringify([{ Key: 'config/a/folder/', Value: null }]) }]
  const server = await faultServer(t, (n) => replies[n]!)
  const http = consulHttp(t, server)
  await t.rejects(readPrefix(http, 'config', 0, 1000), { code: 'FST_REG_DISCOVERY_BAD_RESPONSE' })
  await t.rejects(readPrefix(http, 'config', 0, 1000), { code: 'FST_REG_DISCOVERY_BAD_RESPONSE' })
  await t.rejects(readPrefix(http, 'config', 0, 1000), { code: 'FST_REG_CONSUL_HTTP' })
  t.same((await readPrefix(http, 'config', 0, 1000)).entries, [{ key: 'config/a/folder/', value: null }], 'a folder has no value')
})

t.test('KnownGoodFile: a failed write leaves no temporary file and rejects; foreign or other-prefix files are not used', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'reg-lkg-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const missingDir = new KnownGoodFile(join(dir, 'nope', 'config.json'))
  await t.rejects(missingDir.write({ prefix: 'config', savedAt: 1, values: {}, sources: {} }), { code: 'ENOENT' })
  const foreign = join(dir, 'foreign.json')
  await writeFile(foreign, JSON.stringify({ hello: 'world' }))
  t.match(await new KnownGoodFile(foreign).read('config'), /is not one this plugin wrote/)
  const other = new KnownGoodFile(join(dir, 'other.json'))
  await other.write({ prefix: 'settings', savedAt: 5, values: { a: 1 }, sources: {} })
  t.match(await other.read('config'), /holds prefix "settings"/)
  t.match(await other.read('settings'), { prefix: 'settings', savedAt: 5, values: { a: 1 } })
  await writeFile(foreign, 'not json')
  t.match(await new KnownGoodFile(foreign).read('config'), /not JSON/)
})

t.test('LiveConfig: a throwing listener is logged and the loop goes on; a failed file write is logged', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'reg-lkg-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  let n = 0
  const server = await faultServer(t, (i, url) => {
    if (url.searchParams.get('index') === null) return { index: 10, body: kvBody({ 'config/s/a': String(n) }) }
    // Each blocking read returns the next value, a little later.
    return i > 8 ? { hold: true } : { index: 10 + i, body: kvBody({ 'config/s/a': String(++n) }) }
  })
  const logger = recordingLogger()
  const settings = normalizeConfigOptions({ schema: Type.Object({ a: Type.Integer() }), lastKnownGoodFile: join(dir, 'missing', 'f.json'), contexts: ['s'] }, 's')
  const config = new LiveConfig({ http: consulHttp(t, server), log: logger.log, settings })
  t.teardown(() => config.close())
  const values: number[] = []
  config.on('change', (c) => {
    values.push((c as { a: number }).a)
    throw new Error('listener bug')
  })
  await config.load()
  while (values.length < 3) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(logger.at('error').some((e) => e.msg === 'configuration listener threw'), 'logged')
  t.ok(values.length >= 3, 'later changes still arrive')
  // The file is written after the swap, asynchronously: its failure is logged when the write settles,
  // which under load can be after the third 'change' (a flake seen in a clean-clone run). Waited for,
  // within a bound that only proves it happens.
  const writeFailed = (): boolean => logger.at('warn').some((e) => e.msg === 'could not write the last-known-good configuration file')
  for (let waited = 0; !writeFailed() && waited < 5000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(writeFailed(), 'the failed write is logged')
  await config.close()
  t.equal(config.state, 'closed')
})

t.test('a last-known-good file that no longer validates is FST_REG_CONFIG_INVALID at boot', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'reg-lkg-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'f.json')
  await new KnownGoodFile(file).write({ prefix: 'config', savedAt: 1, values: { a: 'x' }, sources: { a: 'config/s/a' } })
  const server = await faultServer(t, () => ({ drop: true }))
  const settings = normalizeConfigOptions({ schema: Type.Object({ a: Type.Integer() }), failFast: false, lastKnownGoodFile: file, contexts: ['s'] }, 's')
  const config = new LiveConfig({ http: consulHttp(t, server), log: recordingLogger().log, settings })
  await t.rejects(config.load(), { code: 'FST_REG_CONFIG_INVALID', message: /config\/s\/a/ })
})
