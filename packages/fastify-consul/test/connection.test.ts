import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { resolveConnection } from '../src/consul/connection.js'

t.test('defaults to the local agent over http', async (t) => {
  t.same(resolveConnection({}, {}), { origin: 'http://127.0.0.1:8500', host: '127.0.0.1', port: 8500, secure: false, token: undefined, ca: undefined, rejectUnauthorized: true })
})

t.test('CONSUL_HTTP_ADDR as host:port or URL; explicit options win', async (t) => {
  t.equal(resolveConnection({}, { CONSUL_HTTP_ADDR: 'consul:8600' }).origin, 'http://consul:8600')
  t.equal(resolveConnection({ address: 'http://consul' }, {}).origin, 'http://consul:8500', 'a URL without a port gets the agent default')
  t.equal(resolveConnection({}, { CONSUL_HTTP_ADDR: 'https://consul.example' }).origin, 'https://consul.example:8501')
  t.equal(resolveConnection({}, { CONSUL_HTTP_ADDR: 'consul', CONSUL_HTTP_SSL: 'true' }).origin, 'https://consul:8501')
  t.equal(resolveConnection({ address: '10.0.0.1:9000' }, { CONSUL_HTTP_ADDR: 'consul:8600' }).origin, 'http://10.0.0.1:9000')
  t.equal(resolveConnection({ secure: true }, { CONSUL_HTTP_ADDR: 'consul:8600', CONSUL_HTTP_SSL: 'false' }).secure, true)
  const v6 = resolveConnection({ address: '[::1]:8500' }, {})
  t.equal(v6.origin, 'http://[::1]:8500')
  t.equal(v6.host, '::1', 'host without brackets')
})

t.test('bad addresses and flags are coded errors naming the source', async (t) => {
  t.throws(() => resolveConnection({}, { CONSUL_HTTP_ADDR: 'unix:///var/run/consul.sock' }), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /CONSUL_HTTP_ADDR.*unix/ })
  t.throws(() => resolveConnection({ address: 'http://u:p@consul:8500' }, {}), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /consul\.address.*credentials/ })
  t.throws(() => resolveConnection({ address: 'http://consul:8500/v1' }, {}), { code: 'FST_REG_CONSUL_INVALID_OPTION' })
  t.throws(() => resolveConnection({ address: 'http://[bad' }, {}), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /consul\.address/ })
  t.throws(() => resolveConnection({}, { CONSUL_HTTP_SSL: 'maybe' }), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /CONSUL_HTTP_SSL/ })
})

t.test('token precedence: token > tokenFile > CONSUL_HTTP_TOKEN > CONSUL_HTTP_TOKEN_FILE', async (t) => {
  const dir = t.testdir({ a: 'from-file-a\n', b: 'from-file-b\n' })
  const a = join(dir, 'a')
  const b = join(dir, 'b')
  t.equal(resolveConnection({ token: 'explicit', tokenFile: a }, { CONSUL_HTTP_TOKEN: 'env', CONSUL_HTTP_TOKEN_FILE: b }).token, 'explicit')
  t.equal(resolveConnection({ tokenFile: a }, { CONSUL_HTTP_TOKEN: 'env', CONSUL_HTTP_TOKEN_FILE: b }).token, 'from-file-a', 'file contents, trimmed')
  t.equal(resolveConnection({}, { CONSUL_HTTP_TOKEN: 'env', CONSUL_HTTP_TOKEN_FILE: b }).token, 'env')
  t.equal(resolveConnection({}, { CONSUL_HTTP_TOKEN_FILE: b }).token, 'from-file-b')
  t.equal(resolveConnection({ token: '' }, {}).token, undefined, 'an empty token is no token')
  t.throws(() => resolveConnection({ tokenFile: join(dir, 'missing') }, {}), { code: 'FST_REG_CONSUL_TOKEN_FILE' })
})

t.test('TLS settings: CONSUL_CACERT and CONSUL_HTTP_SSL_VERIFY', async (t) => {
  const dir = t.testdir()
  const ca = join(dir, 'ca.pem')
  writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')
  const conn = resolveConnection({}, { CONSUL_HTTP_ADDR: 'https://consul:8501', CONSUL_CACERT: ca, CONSUL_HTTP_SSL_VERIFY: '0' })
  t.match(conn.ca, /BEGIN CERTIFICATE/)
  t.equal(conn.rejectUnauthorized, false)
  t.equal(resolveConnection({ ca: 'PEM', rejectUnauthorized: true }, { CONSUL_CACERT: ca, CONSUL_HTTP_SSL_VERIFY: 'false' }).ca, 'PEM')
  t.throws(() => resolveConnection({}, { CONSUL_CACERT: join(dir, 'nope.pem') }), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /CONSUL_CACERT/ })
})
