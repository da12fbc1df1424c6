import { join } from 'node:path'
import t from 'tap'
import { basicAuthorization, resolveConnection } from '../src/consul/connection.js'

t.test('defaults to the local agent over http', async (t) => {
  t.match(resolveConnection({}, {}), {
    origin: 'http://127.0.0.1:8500',
    address: 'http://127.0.0.1:8500',
    socketPath: undefined,
    host: '127.0.0.1',
    port: 8500,
    secure: false,
    token: undefined,
    tokenFile: undefined,
    ca: undefined,
    caFile: undefined,
    caPath: undefined,
    certFile: undefined,
    keyFile: undefined,
    serverName: undefined,
    rejectUnauthorized: true,
    auth: undefined,
    namespace: undefined,
    partition: undefined
  })
})

t.test('CONSUL_HTTP_ADDR as host:port or URL; explicit options win', async (t) => {
  t.equal(resolveConnection({}, { CONSUL_HTTP_ADDR: 'consul:8600' }).origin, 'http://consul:8600')
  t.equal(resolveConnection({ address: 'http://consul' }, {}).origin, 'http://consul:8500', 'a URL without a port gets the agent default')
  t.equal(resolveConnection({}, { CONSUL_HTTP_ADDR: 'https://consul.example' }).origin, 'https://consul.example:8501')
  t.equal(resolveConnection({}, { CONSUL_HTTP_ADDR: 'consul', CONSUL_HTTP_SSL: 'true' }).origin, 'https://consul:8501')
  t.equal(resolveConnection({ address: '10.0.0.1:9000' }, { CONSUL_HTTP_ADDR: 'consul:8600' }).origin, 'http://10.0.0.1:9000')
  t.equal(resolveConnection({ secure: true }, { CONSUL_HTTP_ADDR: 'consul:8600', CONSUL_HTTP_SSL: 'false' }).secure, true)
  t.equal(resolveConnection({}, { CONSUL_HTTP_ADDR: '' }).origin, 'http://127.0.0.1:8500', 'an empty variable is unset')
  const v6 = resolveConnection({ address: '[::1]:8500' }, {})
  t.equal(v6.origin, 'http://[::1]:8500')
  t.equal(v6.host, '::1', 'host without brackets')
})

t.test('unix:///path: requests go over the socket, messages show the socket', async (t) => {
  const sock = resolveConnection({}, { CONSUL_HTTP_ADDR: 'unix:///var/run/consul/http.sock' })
  t.match(sock, { socketPath: '/var/run/consul/http.sock', origin: 'http://localhost', address: 'unix:///var/run/consul/http.sock', secure: false })
  t.equal(resolveConnection({ address: 'unix:///s.sock' }, { CONSUL_HTTP_SSL: 'true' }).origin, 'https://localhost', 'CONSUL_HTTP_SSL still means TLS, as in the CLI')
  t.throws(() => resolveConnection({ address: 'unix://relative/s.sock' }, {}), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /consul\.address/ })
  t.throws(() => resolveConnection({}, { CONSUL_HTTP_ADDR: 'unix://' }), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /CONSUL_HTTP_ADDR/ })
})

t.test('bad addresses and flags are coded errors naming the source', async (t) => {
  t.throws(() => resolveConnection({}, { CONSUL_HTTP_ADDR: 'ftp://consul' }), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /CONSUL_HTTP_ADDR/ })
  t.throws(() => resolveConnection({ address: 'http://u:p@consul:8500' }, {}), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /consul\.address.*CONSUL_HTTP_AUTH/ })
  t.throws(() => resolveConnection({ address: 'http://consul:8500/v1' }, {}), { code: 'FST_REG_CONSUL_INVALID_OPTION' })
  t.throws(() => resolveConnection({ address: 'http://[bad' }, {}), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /consul\.address/ })
  t.throws(() => resolveConnection({}, { CONSUL_HTTP_SSL: 'maybe' }), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /CONSUL_HTTP_SSL/ })
  t.throws(() => resolveConnection({}, { CONSUL_CLIENT_CERT: '/c.pem' }), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /CONSUL_CLIENT_KEY/ }, 'a certificate without its key names the missing one')
  t.throws(() => resolveConnection({ keyFile: '/k.pem' }, {}), { code: 'FST_REG_CONSUL_INVALID_OPTION', message: /consul\.certFile/ })
})

t.test('token precedence: token > tokenFile > CONSUL_HTTP_TOKEN > CONSUL_HTTP_TOKEN_FILE', async (t) => {
  t.match(resolveConnection({ token: 'explicit', tokenFile: '/a' }, { CONSUL_HTTP_TOKEN: 'env', CONSUL_HTTP_TOKEN_FILE: '/b' }), { token: 'explicit', tokenFile: undefined })
  t.match(resolveConnection({ tokenFile: '/a' }, { CONSUL_HTTP_TOKEN: 'env', CONSUL_HTTP_TOKEN_FILE: '/b' }), { token: undefined, tokenFile: '/a' })
  t.match(resolveConnection({}, { CONSUL_HTTP_TOKEN: 'env', CONSUL_HTTP_TOKEN_FILE: '/b' }), { token: 'env', tokenFile: undefined })
  t.match(resolveConnection({}, { CONSUL_HTTP_TOKEN_FILE: '/b' }), { token: undefined, tokenFile: '/b' })
  t.equal(resolveConnection({ token: '' }, { CONSUL_HTTP_TOKEN: 'env' }).token, undefined, 'an empty token is no token')
})

t.test('TLS settings: option over variable, per setting, and the names errors will use', async (t) => {
  const env = {
    CONSUL_HTTP_ADDR: 'https://consul:8501',
    CONSUL_CACERT: '/env/ca.pem',
    CONSUL_CAPATH: '/env/cas',
    CONSUL_CLIENT_CERT: '/env/c.pem',
    CONSUL_CLIENT_KEY: '/env/k.pem',
    CONSUL_TLS_SERVER_NAME: 'server.dc1.consul',
    CONSUL_HTTP_SSL_VERIFY: '0'
  }
  t.match(resolveConnection({}, env), {
    caFile: '/env/ca.pem',
    caPath: '/env/cas',
    certFile: '/env/c.pem',
    keyFile: '/env/k.pem',
    serverName: 'server.dc1.consul',
    rejectUnauthorized: false,
    names: { address: 'CONSUL_HTTP_ADDR', ca: 'CONSUL_CACERT', cert: 'CONSUL_CLIENT_CERT', key: 'CONSUL_CLIENT_KEY', serverName: 'CONSUL_TLS_SERVER_NAME', secure: 'CONSUL_HTTP_SSL' }
  })
  t.match(resolveConnection({ caFile: '/o/ca.pem', certFile: '/o/c.pem', keyFile: '/o/k.pem', tlsServerName: 'x', rejectUnauthorized: true, secure: true }, env), {
    caFile: '/o/ca.pem',
    certFile: '/o/c.pem',
    serverName: 'x',
    rejectUnauthorized: true,
    names: { ca: 'consul.caFile', cert: 'consul.certFile', key: 'consul.keyFile', serverName: 'consul.tlsServerName', secure: 'consul.secure' }
  })
  t.equal(resolveConnection({ ca: 'PEM' }, env).names.ca, 'consul.ca', 'inline PEM wins over both CA variables')
  t.equal(resolveConnection({}, { CONSUL_CAPATH: '/cas' }).names.ca, 'CONSUL_CAPATH')
  t.match(resolveConnection({}, {}).names, { ca: /CONSUL_CACERT or CONSUL_CAPATH/, cert: /CONSUL_CLIENT_CERT/, serverName: /CONSUL_TLS_SERVER_NAME/ }, 'unset: the variable to set')
})

t.test('basic auth, namespace and partition: option over variable', async (t) => {
  t.match(resolveConnection({}, { CONSUL_HTTP_AUTH: 'u:p', CONSUL_NAMESPACE: 'team', CONSUL_PARTITION: 'part' }), { auth: 'u:p', namespace: 'team', partition: 'part' })
  t.match(resolveConnection({ auth: 'o:q', namespace: 'n', partition: 'p' }, { CONSUL_HTTP_AUTH: 'u:p', CONSUL_NAMESPACE: 'team', CONSUL_PARTITION: 'part' }), { auth: 'o:q', namespace: 'n', partition: 'p' })
  t.equal(basicAuthorization('user:pa:ss'), `Basic ${Buffer.from('user:pa:ss').toString('base64')}`)
  t.equal(basicAuthorization('user'), `Basic ${Buffer.from('user:').toString('base64')}`, 'no colon: a user with an empty password, as in the Go client')
})

t.test('resolveConnection reads no file: a path is only remembered', async (t) => {
  const dir = t.testdir()
  const missing = join(dir, 'missing.pem')
  t.doesNotThrow(() => resolveConnection({}, { CONSUL_HTTP_ADDR: 'https://c:1', CONSUL_CACERT: missing, CONSUL_HTTP_TOKEN_FILE: missing }))
})
