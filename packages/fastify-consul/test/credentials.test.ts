import { copyFile, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { makeTlsFixture } from '@reg/testkit'
import t from 'tap'
import { resolveConnection } from '../src/consul/connection.js'
import { CredentialFiles } from '../src/consul/credentials.js'

const tls = await makeTlsFixture({ t })
const https = 'https://consul:8501'

/** A clock the test moves: recheck timing without sleeping. */
function clock (): { now: () => number, advance: (ms: number) => void } {
  let now = 0
  return { now: () => now, advance: (ms) => { now += ms } }
}

t.test('reads the token file, CA and client certificate once at startup', async (t) => {
  const dir = t.testdir({ token: ' s3cret \n' })
  const files = new CredentialFiles(resolveConnection({ address: https, tokenFile: join(dir, 'token'), caFile: tls.ca.cert, certFile: tls.client.cert, keyFile: tls.client.key }, {}))
  t.match(files.current, { token: 's3cret', version: 0 })
  t.equal(files.current.ca?.length, 1)
  t.match(files.current.cert, /BEGIN CERTIFICATE/)
  t.ok(files.current.certNotAfter! > new Date(), 'the certificate\'s expiry is known')
  t.ok(files.watched)
  t.notOk(new CredentialFiles(resolveConnection({ address: https, token: 'x' }, {})).watched, 'nothing to watch without files')
})

t.test('plain http reads no TLS file at all', async (t) => {
  const files = new CredentialFiles(resolveConnection({}, { CONSUL_CACERT: '/nonexistent.pem' }))
  t.equal(files.current.ca, undefined)
})

t.test('bad files at startup are coded errors naming the setting', async (t) => {
  const dir = t.testdir({ junk: 'not a pem\n', empty: {} })
  const conn = (o: object, env: NodeJS.ProcessEnv = {}): CredentialFiles => new CredentialFiles(resolveConnection({ address: https, ...o }, env))
  t.throws(() => conn({ tokenFile: join(dir, 'nope') }), { code: 'FST_REG_CONSUL_TOKEN_FILE' })
  t.throws(() => conn({}, { CONSUL_CACERT: join(dir, 'nope') }), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /CONSUL_CACERT.*ENOENT/ })
  t.throws(() => conn({ caFile: join(dir, 'junk') }), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /consul\.caFile/ })
  t.throws(() => conn({}, { CONSUL_CAPATH: join(dir, 'empty') }), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /CONSUL_CAPATH.*none/ })
  t.throws(() => conn({}, { CONSUL_CAPATH: join(dir, 'nope') }), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /CONSUL_CAPATH.*ENOENT/ })
  t.throws(() => conn({ certFile: join(dir, 'junk'), keyFile: tls.client.key }), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /consul\.certFile/ })
  t.throws(() => conn({ certFile: tls.client.cert, keyFile: join(dir, 'junk') }), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /consul\.keyFile/ })
  t.throws(() => conn({}, { CONSUL_CLIENT_CERT: tls.client.cert, CONSUL_CLIENT_KEY: tls.server.key }), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /CONSUL_CLIENT_KEY.*CONSUL_CLIENT_CERT/ }, 'a key of another certificate')
})

t.test('CONSUL_CAPATH: every PEM certificate in the folder, other files skipped; CONSUL_CACERT wins', async (t) => {
  const dir = t.testdir({ cas: { 'README.txt': 'hello', sub: {} } })
  await copyFile(tls.ca.cert, join(dir, 'cas', 'a.pem'))
  await copyFile(tls.otherCa.cert, join(dir, 'cas', 'b.crt'))
  t.equal(new CredentialFiles(resolveConnection({ address: https }, { CONSUL_CAPATH: join(dir, 'cas') })).current.ca?.length, 2)
  t.equal(new CredentialFiles(resolveConnection({ address: https, ca: await import('node:fs').then((fs) => fs.readFileSync(tls.ca.cert, 'utf8')) }, { CONSUL_CAPATH: join(dir, 'cas') })).current.ca?.length, 1, 'inline PEM first')
  t.equal(new CredentialFiles(resolveConnection({ address: https }, { CONSUL_CACERT: tls.ca.cert, CONSUL_CAPATH: join(dir, 'cas') })).current.ca?.length, 1, 'the CLI order: CONSUL_CACERT before CONSUL_CAPATH')
})

t.test('re-read when a file changes, at most every recheckMs, or at once after invalidate()', async (t) => {
  const dir = t.testdir({ token: 'one' })
  const c = clock()
  const files = new CredentialFiles(resolveConnection({ tokenFile: join(dir, 'token') }, {}), { recheckMs: 1000, now: c.now })
  await writeFile(join(dir, 'token'), 'two-longer')
  t.equal(files.refresh().token, 'one', 'not looked at before recheckMs')
  c.advance(1000)
  t.match(files.refresh(), { token: 'two-longer', version: 1 })
  c.advance(1000)
  t.equal(files.refresh().version, 1, 'unchanged files: same version')

  await writeFile(join(dir, 'token'), 'three-longest')
  files.invalidate()
  t.match(files.refresh(), { token: 'three-longest', version: 2 }, 'invalidate() makes the next refresh look at once')
})

t.test('a rotation caught half-way keeps the last good material and tries again at the next look', async (t) => {
  const dir = t.testdir()
  await mkdir(join(dir, 'live'))
  const live = { cert: join(dir, 'live', 'c.pem'), key: join(dir, 'live', 'k.pem') }
  await copyFile(tls.client.cert, live.cert)
  await copyFile(tls.client.key, live.key)
  const c = clock()
  const files = new CredentialFiles(resolveConnection({ address: https, certFile: live.cert, keyFile: live.key }, {}), { recheckMs: 10, now: c.now })
  const before = files.current

  const next = await tls.ca.issue('next-client')
  await copyFile(next.cert, live.cert) // the key is not there yet
  c.advance(10)
  t.equal(files.refresh(), before, 'a certificate without its key yet: the old pair stays')
  await copyFile(next.key, live.key)
  c.advance(10)
  const after = files.refresh()
  t.equal(after.version, 1)
  t.not(after.cert, before.cert, 'the new pair once both files are in place')
})

t.test('an empty token file is no token', async (t) => {
  const dir = t.testdir({ token: '\n' })
  t.equal(new CredentialFiles(resolveConnection({ tokenFile: join(dir, 'token') }, {})).current.token, undefined)
})
