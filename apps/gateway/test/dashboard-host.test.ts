import t from 'tap'
import { allowedHosts, hostnameOf, isHostName, isLoopback } from '../src/dashboard-host.js'

// The live view's Host rules alone; test/dashboard.test.ts sends these Hosts to the real view.

t.test('hostnameOf: normalised as a browser would, port dropped; not a host: undefined', async (t) => {
  t.equal(hostnameOf('LOCALHOST:8080'), 'localhost')
  t.equal(hostnameOf('127.1'), '127.0.0.1')
  t.equal(hostnameOf('[0:0::1]:80'), '[::1]')
  t.equal(hostnameOf('gateway.internal.'), 'gateway.internal', 'a trailing dot is the same name')
  for (const bad of ['', 'a b', 'a/b', 'user@host', 'a\\b', '[::1', ':80']) t.equal(hostnameOf(bad), undefined, JSON.stringify(bad))
})

t.test('isHostName: a host without a port', async (t) => {
  for (const ok of ['gateway.internal', '10.0.0.5', '[fd00::1]', 'localhost']) t.ok(isHostName(ok), ok)
  for (const bad of ['gateway.internal:8080', '::1', 'a b', '']) t.notOk(isHostName(bad), bad)
})

t.test('isLoopback: localhost, *.localhost, 127/8, ::1', async (t) => {
  for (const ok of ['localhost', 'view.localhost', '127.0.0.1', '127.9.8.7', '[::1]']) t.ok(isLoopback(ok), ok)
  for (const bad of ['localhost.evil.example', 'evil-localhost', '10.0.0.1', '[::2]', '128.0.0.1']) t.notOk(isLoopback(bad), bad)
})

t.test('allowedHosts: loopback and configured names pass; anything else is 421 FST_REG_GATEWAY_MISDIRECTED', async (t) => {
  const hook = allowedHosts(['Gateway.Internal', '10.0.0.5'])
  const run = (host: string): Promise<unknown> => new Promise((resolve) => {
    hook.call({} as never, { host } as never, {} as never, resolve as never)
  })
  for (const ok of ['127.0.0.1:8080', 'localhost', '[::1]:8080', 'gateway.internal:8080', 'GATEWAY.INTERNAL', '10.0.0.5']) t.equal(await run(ok), undefined, ok)
  for (const bad of ['evil.example', 'evil.example:8080', '10.0.0.6', 'gateway.internal.evil.example', 'a b']) {
    t.match(await run(bad), { code: 'FST_REG_GATEWAY_MISDIRECTED', statusCode: 421 }, bad)
  }
})
