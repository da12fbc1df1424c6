import t from 'tap'
import { DEFAULTS, loadConfig } from '../src/config.js'

t.test('defaults for an empty environment', async (t) => {
  t.same(loadConfig({}), {
    port: 3000,
    host: '127.0.0.1',
    adminPort: 4000,
    adminHost: '127.0.0.1',
    serviceName: 'user-service',
    serviceId: undefined,
    usersDb: './users.db',
    logLevel: 'info',
    consul: {},
    zone: undefined,
    connect: false
  })
  t.equal(loadConfig({}).port, DEFAULTS.port)
})

t.test('every variable is read', async (t) => {
  t.same(loadConfig({
    PORT: '3001',
    HOST: '0.0.0.0',
    ADMIN_PORT: '9001',
    ADMIN_HOST: '0.0.0.0',
    SERVICE_NAME: 'users',
    SERVICE_ID: 'users-1',
    USERS_DB: '/data/users.db',
    LOG_LEVEL: 'DEBUG',
    CONSUL_HTTP_ADDR: 'consul:8500',
    CONSUL_HTTP_TOKEN: 'secret',
    REG_ZONE: ' eu-west-1a ',
    REG_CONNECT: 'TRUE'
  }), {
    port: 3001,
    host: '0.0.0.0',
    adminPort: 9001,
    adminHost: '0.0.0.0',
    serviceName: 'users',
    serviceId: 'users-1',
    usersDb: '/data/users.db',
    logLevel: 'debug',
    consul: { address: 'consul:8500', token: 'secret' },
    zone: 'eu-west-1a',
    connect: true
  })
})

t.test('empty and blank values count as unset', async (t) => {
  t.same(loadConfig({ PORT: '', HOST: ' ', SERVICE_ID: '', LOG_LEVEL: '', CONSUL_HTTP_ADDR: '', CONSUL_HTTP_TOKEN: '', REG_ZONE: ' ', ADMIN_PORT: '', ADMIN_HOST: ' ', REG_CONNECT: '' }), loadConfig({}))
})

t.test('ports from 0 (any free port) to 65535', async (t) => {
  t.equal(loadConfig({ PORT: '0' }).port, 0)
  t.equal(loadConfig({ PORT: '65535', ADMIN_PORT: '9000' }).port, 65535, 'with ADMIN_PORT said: 66535 is no port')
  t.equal(loadConfig({ PORT: ' 8080 ' }).port, 8080)
})

t.test('bad values throw one error naming each variable', async (t) => {
  for (const port of ['abc', '-1', '65536', '3.5', '1e3', '0x10', '123456']) {
    t.throws(() => loadConfig({ PORT: port }), { code: 'FST_REG_USERS_CONFIG', message: /PORT/ }, `PORT=${port}`)
  }
  t.throws(() => loadConfig({ LOG_LEVEL: 'verbose' }), { code: 'FST_REG_USERS_CONFIG', message: /LOG_LEVEL/ })
  t.throws(() => loadConfig({ PORT: 'abc', LOG_LEVEL: 'verbose' }), { message: /PORT.*LOG_LEVEL/ }, 'all problems at once')
})

t.test('REG_CONNECT: true/1 on, false/0 off; anything else is named with the other bad variables', async (t) => {
  for (const on of ['true', '1']) t.equal(loadConfig({ REG_CONNECT: on }).connect, true, on)
  for (const off of ['false', '0']) t.equal(loadConfig({ REG_CONNECT: off }).connect, false, off)
  t.throws(() => loadConfig({ PORT: 'abc', ADMIN_PORT: 'x', REG_CONNECT: 'yes' }), {
    code: 'FST_REG_USERS_CONFIG',
    message: /PORT must.*"abc"; ADMIN_PORT must.*"x"; REG_CONNECT must be true or false, got "yes"/
  })
})
