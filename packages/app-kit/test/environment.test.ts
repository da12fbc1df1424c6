import t from 'tap'
import { LOG_LEVELS, readEnv, readFlag, readServerConfig } from '../src/index.js'

// The apps' config tests (apps/*/test/config.test.ts) check each app's whole loadConfig on top of this.

const DEFAULTS = { port: 3000, host: '127.0.0.1', logLevel: 'info' } as const

t.test('nothing set: the defaults, no Consul address or token, no problem', async (t) => {
  t.same(readServerConfig({}, DEFAULTS), {
    config: { port: 3000, host: '127.0.0.1', adminPort: 4000, adminHost: '127.0.0.1', serviceId: undefined, logLevel: 'info', consul: {} },
    problems: []
  })
})

t.test('every variable read, trimmed, the log level in any case', async (t) => {
  t.same(readServerConfig({
    PORT: ' 0 ',
    HOST: '0.0.0.0',
    ADMIN_PORT: '9999',
    ADMIN_HOST: '::1',
    SERVICE_ID: 'svc-1',
    LOG_LEVEL: 'DEBUG',
    CONSUL_HTTP_ADDR: 'http://127.0.0.1:8500',
    CONSUL_HTTP_TOKEN: 'secret'
  }, DEFAULTS).config, {
    port: 0,
    host: '0.0.0.0',
    adminPort: 9999,
    adminHost: '::1',
    serviceId: 'svc-1',
    logLevel: 'debug',
    consul: { address: 'http://127.0.0.1:8500', token: 'secret' }
  })
})

t.test('unset and empty (or blank) are the same', async (t) => {
  for (const name of ['PORT', 'HOST', 'ADMIN_PORT', 'ADMIN_HOST', 'SERVICE_ID', 'LOG_LEVEL', 'CONSUL_HTTP_ADDR', 'CONSUL_HTTP_TOKEN']) {
    t.same(readServerConfig({ [name]: ' ' }, DEFAULTS), readServerConfig({}, DEFAULTS), name)
  }
  t.equal(readEnv({ A: '  ' }, 'A'), undefined)
  t.equal(readEnv({ A: ' x ' }, 'A'), 'x')
})

t.test('every bad variable is a problem, all at once, quoting what was given', async (t) => {
  for (const port of ['abc', '-1', '65536', '1e3', '3000.5', '123456']) {
    t.same(readServerConfig({ PORT: port }, DEFAULTS).problems, [`PORT must be an integer from 0 to 65535, got "${port}"`], port)
  }
  t.same(readServerConfig({ PORT: '65535', ADMIN_PORT: '1' }, DEFAULTS).problems, [], 'the highest port is fine')
  t.same(readServerConfig({ PORT: 'x', LOG_LEVEL: 'loud' }, DEFAULTS).problems, [
    'PORT must be an integer from 0 to 65535, got "x"',
    `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "loud"`
  ])
})

t.test('ADMIN_PORT: PORT + 1000 by default, 0 with PORT=0, and said when PORT + 1000 is no port', async (t) => {
  const admin = (env: NodeJS.ProcessEnv): { adminPort: number, problems: string[] } => {
    const { config, problems } = readServerConfig(env, DEFAULTS)
    return { adminPort: config.adminPort, problems }
  }
  t.same(admin({ PORT: '8080' }), { adminPort: 9080, problems: [] })
  t.same(admin({ PORT: '0' }), { adminPort: 0, problems: [] }, 'the OS picks both')
  t.same(admin({ PORT: '64535' }), { adminPort: 65535, problems: [] }, 'the last port that has a +1000')
  t.same(admin({ PORT: '64536' }).problems, ['ADMIN_PORT must be set when PORT + 1000 is above 65535 (PORT is 64536)'])
  t.same(admin({ PORT: '64536', ADMIN_PORT: '9000' }), { adminPort: 9000, problems: [] }, 'and then it is enough to say it')
  t.same(admin({ ADMIN_PORT: '0' }), { adminPort: 0, problems: [] }, 'ADMIN_PORT=0: the OS picks')
  t.same(admin({ PORT: '3000', ADMIN_PORT: '3000' }).problems, ['ADMIN_PORT must differ from PORT, got "3000" for both'])
  t.same(admin({ PORT: '0', ADMIN_PORT: '0' }).problems, [], 'both 0 is two different picks')
  for (const bad of ['abc', '-1', '65536', '80.5']) {
    t.same(admin({ ADMIN_PORT: bad }).problems, [`ADMIN_PORT must be an integer from 0 to 65535, got "${bad}"`], bad)
  }
  t.same(admin({ PORT: 'x', ADMIN_PORT: 'y' }).problems, [
    'PORT must be an integer from 0 to 65535, got "x"',
    'ADMIN_PORT must be an integer from 0 to 65535, got "y"'
  ], 'every bad variable at once')
})

t.test('readFlag: true/1 on, false/0/unset off in any case; anything else is a problem, read as off', async (t) => {
  const read = (value: string | undefined): { on: boolean, problems: string[] } => {
    const problems: string[] = []
    return { on: readFlag(value === undefined ? {} : { FLAG: value }, 'FLAG', problems), problems }
  }
  for (const on of ['true', 'TRUE', ' 1 ']) t.same(read(on), { on: true, problems: [] }, on)
  for (const off of ['false', 'False', '0', '', undefined]) t.same(read(off), { on: false, problems: [] }, String(off))
  t.same(read('yes'), { on: false, problems: ['FLAG must be true or false, got "yes"'] })
})
