import t from 'tap'
import { DEFAULTS, loadConfig } from '../src/config.js'

t.test('defaults for an empty environment', async (t) => {
  t.same(loadConfig({}), {
    port: 8080,
    host: '127.0.0.1',
    upstream: 'user-service',
    serviceId: undefined,
    pseudonym: undefined,
    logLevel: 'info',
    consul: {},
    dashboard: false,
    dashboardHosts: []
  })
  t.equal(loadConfig({}).port, DEFAULTS.port)
})

t.test('every variable is read', async (t) => {
  t.same(loadConfig({
    PORT: '9090',
    HOST: '0.0.0.0',
    UPSTREAM_SERVICE: 'users',
    SERVICE_ID: 'gateway-1',
    LOG_LEVEL: 'DEBUG',
    CONSUL_HTTP_ADDR: 'consul:8500',
    CONSUL_HTTP_TOKEN: 'secret',
    GATEWAY_PSEUDONYM: 'edge-1',
    GATEWAY_DASHBOARD: 'true',
    GATEWAY_DASHBOARD_HOSTS: 'gateway.internal, 10.0.0.5,[fd00::1]'
  }), {
    port: 9090,
    host: '0.0.0.0',
    upstream: 'users',
    serviceId: 'gateway-1',
    logLevel: 'debug',
    pseudonym: 'edge-1',
    consul: { address: 'consul:8500', token: 'secret' },
    dashboard: true,
    dashboardHosts: ['gateway.internal', '10.0.0.5', '[fd00::1]']
  })
})

t.test('GATEWAY_DASHBOARD: true/1 on, false/0 off, anything else is an error', async (t) => {
  for (const on of ['true', 'TRUE', '1']) t.equal(loadConfig({ GATEWAY_DASHBOARD: on }).dashboard, true, on)
  for (const off of ['false', '0', '']) t.equal(loadConfig({ GATEWAY_DASHBOARD: off }).dashboard, false, JSON.stringify(off))
  t.throws(() => loadConfig({ GATEWAY_DASHBOARD: 'yes' }), { code: 'FST_REG_GATEWAY_CONFIG', message: /GATEWAY_DASHBOARD/ })
})

t.test('GATEWAY_PSEUDONYM must be a token; GATEWAY_DASHBOARD_HOSTS host names without ports', async (t) => {
  for (const bad of ['two words', 'a,b', 'x(y)', 'caf\u00e9']) {
    t.throws(() => loadConfig({ GATEWAY_PSEUDONYM: bad }), { code: 'FST_REG_GATEWAY_CONFIG', message: /GATEWAY_PSEUDONYM/ }, bad)
  }
  for (const bad of ['a.example:8080', 'a/b', 'a b', '::1', 'user@host']) {
    t.throws(() => loadConfig({ GATEWAY_DASHBOARD_HOSTS: `ok.example,${bad}` }), { code: 'FST_REG_GATEWAY_CONFIG', message: /GATEWAY_DASHBOARD_HOSTS/ }, bad)
  }
})

t.test('empty and blank values count as unset', async (t) => {
  t.same(loadConfig({ PORT: '', HOST: ' ', UPSTREAM_SERVICE: '', SERVICE_ID: '', LOG_LEVEL: '', CONSUL_HTTP_ADDR: '', CONSUL_HTTP_TOKEN: '' }), loadConfig({}))
})

t.test('ports from 0 (any free port) to 65535', async (t) => {
  t.equal(loadConfig({ PORT: '0' }).port, 0)
  t.equal(loadConfig({ PORT: '65535' }).port, 65535)
  t.equal(loadConfig({ PORT: ' 8081 ' }).port, 8081)
})

t.test('bad values throw one error naming each variable', async (t) => {
  for (const port of ['abc', '-1', '65536', '3.5', '1e3', '0x10', '123456']) {
    t.throws(() => loadConfig({ PORT: port }), { code: 'FST_REG_GATEWAY_CONFIG', message: /PORT/ }, `PORT=${port}`)
  }
  t.throws(() => loadConfig({ LOG_LEVEL: 'verbose' }), { code: 'FST_REG_GATEWAY_CONFIG', message: /LOG_LEVEL/ })
  t.throws(() => loadConfig({ PORT: 'abc', LOG_LEVEL: 'verbose' }), { message: /PORT.*LOG_LEVEL/ }, 'all problems at once')
})
