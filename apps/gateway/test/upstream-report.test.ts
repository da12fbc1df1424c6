import t from 'tap'
import type { Instance } from '@reg/fastify-consul'
import { upstreamReport } from '../src/app.js'

const instance = (id: string, status: Instance['status'], maintenance = false): Instance => ({
  id, service: 'users', node: 'n', datacenter: 'dc1', nodeMeta: {}, address: '127.0.0.1', port: 1, host: '127.0.0.1', tags: [], meta: {}, weight: 1, status, maintenance
})
const a = instance('a', 'passing')
const b = instance('b', 'critical')
const c = instance('c', 'critical')

t.test('the upstream check names the cause when discovery fails static', async (t) => {
  t.same(upstreamReport('users', { instances: [a], all: [a], state: 'live', panic: false, lastContact: 0 }), { status: 'passing', output: '1 healthy instance(s) of users' })
  t.same(upstreamReport('users', { instances: [], all: [], state: 'live', panic: false, lastContact: 0 }), { status: 'warning', output: 'no instance of users in Consul' })
  t.same(upstreamReport('users', { instances: [a, b, c], all: [a, b, c], state: 'live', panic: true, lastContact: 0 }),
    { status: 'warning', output: 'panic: 1 of 3 instance(s) of users healthy in Consul; routing to all 3' })
  t.same(upstreamReport('users', { instances: [a, b], all: [a, b], state: 'stale', panic: false, lastContact: 1_000 }, 64_000),
    { status: 'warning', output: 'Consul unreachable for 63 s; serving the last known 2 instance(s) of users' })
  t.same(upstreamReport('users', { instances: [], all: [], state: 'stale', panic: false, lastContact: undefined }, 64_000),
    { status: 'warning', output: 'Consul unreachable for 0 s; serving the last known 0 instance(s) of users' }, 'stale before any answer cannot say for how long')
})
