import t from 'tap'
import { aggregateStatus, parseHealth, type Instance } from '../src/discovery/watch/instance.js'
import { urlHost } from '../src/consul/address.js'
import { InstanceSet } from '../src/discovery/watch/instance-set.js'

// Trimmed from a real Consul 1.8.7 answer; the extra fields stay to show they are ignored.
function entry (over: { id?: string, node?: string, address?: string, nodeAddress?: string, port?: number, tags?: string[] | null, meta?: Record<string, string> | null, weights?: { Passing: number, Warning: number } | null, checks?: string[] | null } = {}): object {
  return {
    Node: { ID: '2093', Node: over.node ?? 'reg-1', Address: over.nodeAddress ?? '127.0.0.1', Datacenter: 'dc1', Meta: { 'consul-network-segment': '' } },
    Service: {
      ID: over.id ?? 'web-1',
      Service: 'web',
      Tags: over.tags === undefined ? [] : over.tags,
      Address: over.address ?? '',
      Meta: over.meta === undefined ? null : over.meta,
      Port: over.port ?? 1234,
      ...(over.weights !== undefined && { Weights: over.weights }),
      EnableTagOverride: false,
      Proxy: { MeshGateway: {}, Expose: {} },
      CreateIndex: 13,
      ModifyIndex: 13
    },
    Checks: over.checks === null ? null : (over.checks ?? ['passing', 'passing']).map((Status, i) => ({ CheckID: `c${i}`, Status, Output: 'ok' }))
  }
}

const parse = (...entries: object[]): Instance[] => parseHealth('web', JSON.stringify(entries)).instances

t.test('parseHealth maps an entry to a frozen Instance', async (t) => {
  const [i] = parse(entry({ tags: ['a', 'b'], meta: { v: '1' }, weights: { Passing: 3, Warning: 1 } }))
  t.same(i, {
    id: 'web-1',
    service: 'web',
    node: 'reg-1',
    datacenter: 'dc1',
    nodeMeta: { 'consul-network-segment': '' },
    address: '127.0.0.1',
    port: 1234,
    host: '127.0.0.1',
    tags: ['a', 'b'],
    meta: { v: '1' },
    weight: 3,
    status: 'passing',
    maintenance: false
  })
  t.ok(Object.isFrozen(i) && Object.isFrozen(i!.tags) && Object.isFrozen(i!.meta))
})

t.test('address: Service.Address wins, Node.Address when empty; IPv6 is bracketed for URLs', async (t) => {
  const [own, fallback, v6] = parse(
    entry({ id: 'a', address: '10.0.0.7', nodeAddress: '10.0.0.1' }),
    entry({ id: 'b', address: '', nodeAddress: '10.0.0.1' }),
    entry({ id: 'c', address: '::1' })
  )
  t.equal(own!.address, '10.0.0.7')
  t.equal(fallback!.address, '10.0.0.1')
  t.equal(v6!.address, '::1')
  t.equal(v6!.host, '[::1]')
  t.equal(urlHost('fe80::1'), '[fe80::1]')
  t.equal(urlHost('api.internal'), 'api.internal')
})

t.test('status is the worst check, node checks included; weight follows the status', async (t) => {
  const weights = { Passing: 5, Warning: 2 }
  const [passing, warning, critical] = parse(
    entry({ id: 'p', weights, checks: ['passing', 'passing'] }),
    entry({ id: 'w', weights, checks: ['passing', 'warning'] }),
    entry({ id: 'c', weights, checks: ['warning', 'critical'] })
  )
  t.same([passing!.status, passing!.weight], ['passing', 5])
  t.same([warning!.status, warning!.weight], ['warning', 2])
  t.same([critical!.status, critical!.weight], ['critical', 0])
  t.equal(aggregateStatus([{ Status: 'maintenance' }]), 'critical', 'an unknown status is not trusted')
  t.equal(aggregateStatus([]), 'passing')
})

t.test('null Tags, Meta, Weights and Checks take Consul defaults', async (t) => {
  const [i] = parse(entry({ tags: null, meta: null, weights: null, checks: null }))
  t.same(i!.tags, [])
  t.same(i!.meta, {})
  t.equal(i!.weight, 1, 'Weights default to { Passing: 1, Warning: 1 }')
  t.equal(i!.status, 'passing')
  const [noWeights] = parse(entry({ checks: ['warning'] }))
  t.equal(noWeights!.weight, 1)
})

t.test('a body that is not JSON, or not the expected shape, is FST_REG_DISCOVERY_BAD_RESPONSE', async (t) => {
  const bad = ['<html>', '{"not":"an array"}', JSON.stringify([{ Node: {}, Service: {} }]),
    JSON.stringify([{ ...entry(), Service: { ...(entry() as { Service: object }).Service, Port: '80' } }]), 'null']
  for (const text of bad) {
    t.throws(() => parseHealth('web', text), { code: 'FST_REG_DISCOVERY_BAD_RESPONSE' }, text.slice(0, 40))
  }
  t.same(parseHealth('web', '[]'), { instances: [], invalid: [] }, 'an empty array is a legitimate empty answer')
})

t.test('InstanceSet: sorted by node then id, frozen, hashed', async (t) => {
  const list = parse(entry({ id: 'b', node: 'n1' }), entry({ id: 'a', node: 'n2' }), entry({ id: 'a', node: 'n1' }))
  const set = InstanceSet.from(list)
  t.same(set.instances.map((i) => `${i.node}/${i.id}`), ['n1/a', 'n1/b', 'n2/a'])
  t.equal(set.size, 3)
  t.ok(Object.isFrozen(set.instances))
  t.match(set.hash, /^[\w-]{43}$/)
  t.ok(set.equals(InstanceSet.from([...list].reverse())), 'order does not matter')
  t.ok(set.equals(set))
  t.equal(InstanceSet.from([]), InstanceSet.EMPTY)
  t.equal(InstanceSet.EMPTY.size, 0)
  t.notOk(set.equals(InstanceSet.EMPTY))
})

t.test('InstanceSet: every field that matters changes the hash; meta key order and ignored fields do not', async (t) => {
  const base = entry({ tags: ['a'], meta: { x: '1', y: '2' }, weights: { Passing: 2, Warning: 1 } })
  const hashOf = (e: object): string => InstanceSet.from(parse(e)).hash
  const h = hashOf(base)
  const variants: Record<string, object> = {
    id: entry({ id: 'web-2', tags: ['a'], meta: { x: '1', y: '2' }, weights: { Passing: 2, Warning: 1 } }),
    node: entry({ node: 'reg-2', tags: ['a'], meta: { x: '1', y: '2' }, weights: { Passing: 2, Warning: 1 } }),
    address: entry({ address: '10.1.1.1', tags: ['a'], meta: { x: '1', y: '2' }, weights: { Passing: 2, Warning: 1 } }),
    port: entry({ port: 99, tags: ['a'], meta: { x: '1', y: '2' }, weights: { Passing: 2, Warning: 1 } }),
    tags: entry({ tags: ['a', 'b'], meta: { x: '1', y: '2' }, weights: { Passing: 2, Warning: 1 } }),
    meta: entry({ tags: ['a'], meta: { x: '1', y: '3' }, weights: { Passing: 2, Warning: 1 } }),
    weight: entry({ tags: ['a'], meta: { x: '1', y: '2' }, weights: { Passing: 4, Warning: 1 } }),
    status: entry({ tags: ['a'], meta: { x: '1', y: '2' }, weights: { Passing: 2, Warning: 2 }, checks: ['warning'] })
  }
  for (const [field, e] of Object.entries(variants)) t.not(hashOf(e), h, field)
  t.equal(hashOf(entry({ tags: ['a'], meta: { y: '2', x: '1' }, weights: { Passing: 2, Warning: 1 } })), h, 'meta key order')
  const noisy = { ...base, Checks: [{ CheckID: 'c0', Status: 'passing', Output: 'different output' }] }
  t.equal(hashOf(noisy), h, 'check output and indexes are not part of identity')
})

t.test('sorted by datacenter first: a failover watch\'s set hashes the same whatever order the datacenters answered in', async (t) => {
  const [a] = parse(entry({ id: 'a', node: 'n2' }))
  const [b] = parse(entry({ id: 'b', node: 'n1' }))
  const inDc2 = Object.freeze({ ...b!, datacenter: 'dc2' })
  const one = InstanceSet.from([inDc2, a!])
  const other = InstanceSet.from([a!, inDc2])
  t.same(one.instances.map((i) => i.datacenter), ['dc1', 'dc2'], 'dc1 before dc2 though its node sorts after')
  t.ok(one.equals(other))
})
