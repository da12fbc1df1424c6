import type { ConnectNativeOutbound } from '@reg/fastify-consul'
import Fastify from 'fastify'
import t from 'tap'
import { DEFAULTS, gatewayOptions, loadConfig } from '../src/config.js'

t.test('defaults for an empty environment', async (t) => {
  t.same(loadConfig({}), {
    port: 8080,
    host: '127.0.0.1',
    adminPort: 9080,
    adminHost: '127.0.0.1',
    upstream: 'user-service',
    serviceId: undefined,
    pseudonym: undefined,
    logLevel: 'info',
    consul: {},
    dashboard: false,
    dashboardHosts: [],
    failover: [],
    zone: undefined,
    connect: false
  })
  t.equal(loadConfig({}).port, DEFAULTS.port)
})

t.test('every variable is read', async (t) => {
  t.same(loadConfig({
    PORT: '9090',
    HOST: '0.0.0.0',
    ADMIN_PORT: '9191',
    ADMIN_HOST: '0.0.0.0',
    UPSTREAM_SERVICE: 'users',
    SERVICE_ID: 'gateway-1',
    LOG_LEVEL: 'DEBUG',
    CONSUL_HTTP_ADDR: 'consul:8500',
    CONSUL_HTTP_TOKEN: 'secret',
    GATEWAY_PSEUDONYM: 'edge-1',
    GATEWAY_DASHBOARD: 'true',
    GATEWAY_DASHBOARD_HOSTS: 'gateway.internal, 10.0.0.5,[fd00::1]',
    REG_FAILOVER: 'dc2, eu_west-3',
    REG_ZONE: ' eu-west-1a ',
    REG_CONNECT: 'true'
  }), {
    port: 9090,
    host: '0.0.0.0',
    adminPort: 9191,
    adminHost: '0.0.0.0',
    upstream: 'users',
    serviceId: 'gateway-1',
    logLevel: 'debug',
    pseudonym: 'edge-1',
    consul: { address: 'consul:8500', token: 'secret' },
    dashboard: true,
    dashboardHosts: ['gateway.internal', '10.0.0.5', '[fd00::1]'],
    failover: ['dc2', 'eu_west-3'],
    zone: 'eu-west-1a',
    connect: true
  })
})

t.test('REG_FAILOVER: datacenter names in priority order, each once, no empty entry', async (t) => {
  t.same(loadConfig({ REG_FAILOVER: 'dc3,dc2' }).failover, ['dc3', 'dc2'], 'the order is kept: it is the priority')
  t.same(loadConfig({ REG_FAILOVER: ' dc2 ' }).failover, ['dc2'])
  for (const unset of ['', '  ']) t.same(loadConfig({ REG_FAILOVER: unset }).failover, [], `${JSON.stringify(unset)} is unset`)
  for (const bad of ['dc2,,dc3', 'dc2,', ',dc2', 'dc2, ,dc3', 'dc 2', 'dc2;dc3', 'dc.2', 'dc2/x', 'd\u00e9']) {
    t.throws(() => loadConfig({ REG_FAILOVER: bad }), { code: 'FST_REG_GATEWAY_CONFIG', message: /REG_FAILOVER must be datacenter names/ }, bad)
  }
  t.throws(() => loadConfig({ REG_FAILOVER: 'dc2,dc3,dc2' }), { code: 'FST_REG_GATEWAY_CONFIG', message: /REG_FAILOVER .*each named once \("dc2" is repeated\)/ })
  t.throws(() => loadConfig({ PORT: 'abc', REG_FAILOVER: 'dc2,,' }), { message: /PORT.*; REG_FAILOVER/ }, 'named with the other bad variables, at once')
})

t.test('gatewayOptions: what server.ts registers the gateway with', async (t) => {
  const admin = { server: Fastify(), port: 9080 }
  t.teardown(() => admin.server.close())
  // server.ts's `prepare` made it (connectNative, inbound: false); gatewayOptions only passes it on.
  const connect = { service: 'gateway', inbound: false } as unknown as ConnectNativeOutbound
  t.same(gatewayOptions(loadConfig({})), {
    admin: undefined,
    connect: undefined,
    upstream: 'user-service',
    serviceId: undefined,
    pseudonym: undefined,
    consul: {},
    dashboard: false,
    failover: [],
    zone: undefined
  })
  t.same(gatewayOptions(loadConfig({
    UPSTREAM_SERVICE: 'users',
    SERVICE_ID: 'gw-1',
    GATEWAY_PSEUDONYM: 'edge',
    CONSUL_HTTP_ADDR: 'consul:8500',
    GATEWAY_DASHBOARD: '1',
    GATEWAY_DASHBOARD_HOSTS: 'gw.internal',
    REG_FAILOVER: 'dc2,dc3',
    REG_ZONE: 'a',
    REG_CONNECT: 'true'
  }), admin, connect), {
    admin,
    connect,
    upstream: 'users',
    serviceId: 'gw-1',
    pseudonym: 'edge',
    consul: { address: 'consul:8500' },
    dashboard: { allowedHosts: ['gw.internal'] },
    failover: ['dc2', 'dc3'],
    zone: 'a'
  })
})

t.test('GATEWAY_DASHBOARD: true/1 on, false/0 off, anything else is an error', async (t) => {
  for (const on of ['true', 'TRUE', '1']) t.equal(loadConfig({ GATEWAY_DASHBOARD: on }).dashboard, true, on)
  for (const off of ['false', '0', '']) t.equal(loadConfig({ GATEWAY_DASHBOARD: off }).dashboard, false, JSON.stringify(off))
  t.throws(() => loadConfig({ GATEWAY_DASHBOARD: 'yes' }), { code: 'FST_REG_GATEWAY_CONFIG', message: /GATEWAY_DASHBOARD/ })
})

t.test('REG_CONNECT: true/1 on, false/0 off, anything else is an error named with the others', async (t) => {
  for (const on of ['true', '1']) t.equal(loadConfig({ REG_CONNECT: on }).connect, true, on)
  for (const off of ['false', '0', '']) t.equal(loadConfig({ REG_CONNECT: off }).connect, false, JSON.stringify(off))
  t.throws(() => loadConfig({ PORT: 'abc', REG_CONNECT: 'on' }), { code: 'FST_REG_GATEWAY_CONFIG', message: /PORT.*REG_CONNECT/ })
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
  t.same(loadConfig({ PORT: '', HOST: ' ', UPSTREAM_SERVICE: '', SERVICE_ID: '', LOG_LEVEL: '', CONSUL_HTTP_ADDR: '', CONSUL_HTTP_TOKEN: '', REG_FAILOVER: '', REG_ZONE: ' ' }), loadConfig({}))
})

t.test('ports from 0 (any free port) to 65535', async (t) => {
  t.equal(loadConfig({ PORT: '0' }).port, 0)
  t.equal(loadConfig({ PORT: '65535', ADMIN_PORT: '9000' }).port, 65535)
  t.equal(loadConfig({ PORT: ' 8081 ' }).port, 8081)
})

t.test('bad values throw one error naming each variable', async (t) => {
  for (const port of ['abc', '-1', '65536', '3.5', '1e3', '0x10', '123456']) {
    t.throws(() => loadConfig({ PORT: port }), { code: 'FST_REG_GATEWAY_CONFIG', message: /PORT/ }, `PORT=${port}`)
  }
  t.throws(() => loadConfig({ LOG_LEVEL: 'verbose' }), { code: 'FST_REG_GATEWAY_CONFIG', message: /LOG_LEVEL/ })
  t.throws(() => loadConfig({ PORT: 'abc', LOG_LEVEL: 'verbose' }), { message: /PORT.*LOG_LEVEL/ }, 'all problems at once')
})

t.test('ADMIN_PORT and ADMIN_HOST: read by @reg/app-kit, reported with the gateway\'s own problems at once', async (t) => {
  t.equal(loadConfig({ PORT: '8081' }).adminPort, 9081, 'PORT + 1000 by default')
  t.throws(() => loadConfig({ ADMIN_PORT: 'admin', GATEWAY_DASHBOARD: 'yes' }), {
    code: 'FST_REG_GATEWAY_CONFIG',
    message: /ADMIN_PORT must be an integer from 0 to 65535, got "admin".*; GATEWAY_DASHBOARD must be true or false, got "yes"/
  })
})
