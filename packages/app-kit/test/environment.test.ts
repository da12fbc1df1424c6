import t from 'tap'
import { LOG_LEVELS, readEnv, readServerConfig } from '../src/index.js'

// The apps' config tests (apps/*/test/config.test.ts) check each app's whole loadConfig on top of this.

const DEFAULTS = { port: 3000, host: '127.0.0.1', logLevel: 'info' } as const

t.test('nothing set: the defaults, no Consul address or token, no problem', async (t) => {
  t.same(readServerConfig({}, DEFAULTS), {
    config: { port: 3000, host: '127.0.0.1', serviceId: undefined, logLevel: 'info', consul: {} },
    problems: []
  })
})

t.test('every variable read, trimmed, the log level in any case', async (t) => {
  t.same(readServerConfig({
    PORT: ' 0 ',
    HOST: '0.0.0.0',
    SERVICE_ID: 'svc-1',
    LOG_LEVEL: 'DEBUG',
    CONSUL_HTTP_ADDR: 'http://127.0.0.1:8500',
    CONSUL_HTTP_TOKEN: 'secret'
  }, DEFAULTS).config, {
    port: 0,
    host: '0.0.0.0',
    serviceId: 'svc-1',
    logLevel: 'debug',
    consul: { address: 'http://127.0.0.1:8500', token: 'secret' }
  })
})

t.test('unset and empty (or blank) are the same', async (t) => {
  for (const name of ['PORT', 'HOST', 'SERVICE_ID', 'LOG_LEVEL', 'CONSUL_HTTP_ADDR', 'CONSUL_HTTP_TOKEN']) {
    t.same(readServerConfig({ [name]: ' ' }, DEFAULTS), readServerConfig({}, DEFAULTS), name)
  }
  t.equal(readEnv({ A: '  ' }, 'A'), undefined)
  t.equal(readEnv({ A: ' x ' }, 'A'), 'x')
})

t.test('every bad variable is a problem, all at once, quoting what was given', async (t) => {
  for (const port of ['abc', '-1', '65536', '1e3', '3000.5', '123456']) {
    t.same(readServerConfig({ PORT: port }, DEFAULTS).problems, [`PORT must be an integer from 0 to 65535, got "${port}"`], port)
  }
  t.same(readServerConfig({ PORT: '65535' }, DEFAULTS).problems, [], 'the highest port is fine')
  t.same(readServerConfig({ PORT: 'x', LOG_LEVEL: 'loud' }, DEFAULTS).problems, [
    'PORT must be an integer from 0 to 65535, got "x"',
    `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "loud"`
  ])
})
