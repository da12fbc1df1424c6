import t from 'tap'
import { serviceUntil, startConsul } from '../src/index.js'

t.test('serviceUntil waits on blocking queries until the predicate holds, or times out', async (t) => {
  const agent = await startConsul({ t })
  t.same(await serviceUntil(agent.url, 'svc', (e) => e.length === 0), [], 'already true: one request')

  const appeared = serviceUntil(agent.url, 'svc', (e) => e.length === 1, { passing: true })
  const res = await fetch(`${agent.url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ ID: 'svc-1', Name: 'svc', Port: 1234, Check: { TTL: '30s', Status: 'passing' } }) })
  await res.arrayBuffer()
  const [entry] = await appeared
  t.equal(entry!.Service.ID, 'svc-1', 'woken by the registration')

  await t.rejects(serviceUntil(agent.url, 'svc', (e) => e.length === 2, { timeoutMs: 1500 }), { message: /timed out after 1500 ms waiting for svc/ })

  // An abort ends a blocking query in flight (not after its 5 s wait), and one already aborted sends nothing.
  const gone = new AbortController()
  const started = Date.now()
  const waiting = serviceUntil(agent.url, 'svc', (e) => e.length === 2, { signal: gone.signal })
  setTimeout(() => gone.abort(new Error('replica 0 exited 1')), 200)
  await t.rejects(waiting, { message: 'replica 0 exited 1' })
  t.ok(Date.now() - started < 4000, 'ended by the abort, not by the wait')
  await t.rejects(serviceUntil(agent.url, 'svc', () => true, { signal: gone.signal }), { message: 'replica 0 exited 1' })
})
