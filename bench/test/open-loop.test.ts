import { createServer } from 'node:http'
import { once } from 'node:events'
import t from 'tap'
import { haproxyConfig } from '../src/haproxy.js'
import { openLoop, quantile, windowStats } from '../src/open-loop.js'
import { rotation } from '../src/stats.js'

t.test('windowStats: requests due in the window, failures, requests over 1 s, delivery, p50/p99/max from when each was due', async (t) => {
  const samples = [
    { due: 0, done: 10, ok: true },
    { due: 100, done: 2300, ok: true }, // stuck 2.2 s, answered after the window
    { due: 200, done: 215, ok: false },
    { due: 300, done: 320, ok: true },
    { due: 1000, done: 1010, ok: true } // due after the window
  ]
  t.same(windowStats(samples, 0, 1000), { sent: 4, failed: 1, slow: 1, delivered: 0.5, p50: 15, p99: 2200, max: 2200 })
  t.same(windowStats(samples, 5000, 6000), { sent: 0, failed: 0, slow: 0, delivered: 0, p50: 0, p99: 0, max: 0 }, 'an empty window')
  t.equal(quantile([1, 2, 3, 4], 0.5), 2)
  t.equal(quantile([1, 2, 3, 4], 0.99), 4)
})

t.test('openLoop sends on schedule whether or not earlier requests answered', async (t) => {
  let held = 0
  const server = createServer((req, res) => {
    // Every third request hangs for 1.5 s: a closed loop would slow down, an open loop does not.
    res.setHeader('x-instance-id', `r${held % 2}`)
    if (++held % 3 === 0) setTimeout(() => res.end('late'), 1500)
    else res.end('ok')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const port = (server.address() as { port: number }).port
  const loop = openLoop(`http://127.0.0.1:${port}/`, { rate: 40 })
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const samples = await loop.stop()
  t.ok(samples.length >= 30, `about 40 requests in 1 s at 40 req/s, ${samples.length}`)
  t.ok(samples.some((s) => s.done - s.due > 1000), 'the held requests show as slow')
  t.ok(samples.every((s) => s.ok), 'and still answered')
  t.same(new Set(samples.map((s) => s.instance)), new Set(['r0', 'r1']), 'each sample names the replica that answered (x-instance-id)')

  const refused = openLoop('http://127.0.0.1:1/', { rate: 20, timeoutMs: 500 })
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.ok((await refused.stop()).every((s) => !s.ok), 'a refused connection is a failed request')
  // Its own undici Agent is closed once: a second stop (a scenario's `finally`) must not throw ClientDestroyedError.
  t.equal(await refused.stop(), await refused.stop(), 'stop() again returns the same samples')
})

t.test('openLoop with `origin`: each request goes where the lookup says, with the URL\'s path; a failed lookup is a failed request', async (t) => {
  const paths: string[] = []
  const server = createServer((req, res) => {
    paths.push(req.url!)
    res.end('ok')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  let lookups = 0
  const loop = openLoop('http://user-service/users?limit=2', { rate: 40, origin: async () => { lookups++; return origin } })
  await new Promise((resolve) => setTimeout(resolve, 300))
  const samples = await loop.stop()
  t.ok(samples.length > 0 && samples.every((s) => s.ok), 'answered by the origin looked up')
  t.equal(lookups, samples.length, 'one lookup per request')
  t.ok(paths.every((p) => p === '/users?limit=2'), 'with the path and query of the URL')

  const none = openLoop('http://user-service/users', { rate: 40, origin: async () => { throw new Error('no instance') } })
  await new Promise((resolve) => setTimeout(resolve, 200))
  const failed = await none.stop()
  t.ok(failed.length > 0 && failed.every((s) => !s.ok), 'a lookup that fails fails its request')
})

t.test('rotation: each side once in every position over as many rounds as sides', async (t) => {
  const sides = ['a', 'b', 'c']
  t.same([0, 1, 2, 3].map((r) => rotation(sides, r)), [['a', 'b', 'c'], ['b', 'c', 'a'], ['c', 'a', 'b'], ['a', 'b', 'c']])
})

t.test('haproxyConfig: every knob of a fair peer (shared CONSUL.md), with our per-try timeout', async (t) => {
  const c = haproxyConfig({ port: 1, statsPort: 2, dnsPort: 3, service: 'user-service', slots: 3, perTryTimeout: '2s' })
  for (const line of [
    'timeout server 2s', 'timeout check 1s', 'retries 3', 'option redispatch 1',
    'retry-on conn-failure empty-response response-timeout', 'default-server init-addr none', 'hold valid 1s',
    'balance leastconn', 'nameserver consul 127.0.0.1:3',
    'default-server check inter 1s fastinter 250ms downinter 1s rise 2 fall 2 observe layer7 error-limit 3 on-error mark-down',
    'server-template user-service- 3 _user-service._tcp.service.consul resolvers consul resolve-prefer ipv4 resolve-opts allow-dup-ip'
  ]) t.ok(c.split('\n').some((l) => l.trim() === line), line)
})
