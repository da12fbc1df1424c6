import type { NetworkInterfaceInfo } from 'node:os'
import t from 'tap'
import { fullJitter } from '../src/util/backoff.js'
import { normalizeOptions } from '../src/options.js'
import { urlHost } from '../src/consul/address.js'
import { buildDefinition, defaultServiceId, resolveAddress } from '../src/registration/definition.js'

const iface = (address: string, family: 'IPv4' | 'IPv6', internal: boolean): NetworkInterfaceInfo =>
  ({ address, family, internal, netmask: '', mac: '', cidr: null, ...(family === 'IPv6' ? { scopeid: 0 } : {}) }) as NetworkInterfaceInfo

t.test('address resolution order, with the rule that chose it', async (t) => {
  const ifs = { lo: [iface('127.0.0.1', 'IPv4', true)], eth0: [iface('fe80::1', 'IPv6', false), iface('10.1.2.3', 'IPv4', false)] }
  t.same(resolveAddress('svc.internal', '127.0.0.1', ifs), { address: 'svc.internal', rule: 'service.address' })
  t.same(resolveAddress(undefined, '127.0.0.1', ifs), { address: '127.0.0.1', rule: 'bound address' })
  t.same(resolveAddress(undefined, '0.0.0.0', ifs), { address: '10.1.2.3', rule: 'host interface' })
  t.same(resolveAddress(undefined, '::', ifs), { address: '10.1.2.3', rule: 'host interface' })
  t.same(resolveAddress(undefined, undefined, { lo: [iface('127.0.0.1', 'IPv4', true)], none: undefined }), { address: '127.0.0.1', rule: 'loopback fallback' })
  t.same(resolveAddress(undefined, '').rule === 'bound address', false, 'an empty bound address is not concrete')
})

t.test('ids and hosts', async (t) => {
  t.equal(defaultServiceId('users', 3000, 'web 1.local'), 'users-web-1.local-3000')
  t.equal(urlHost('::1'), '[::1]')
  t.equal(urlHost('10.0.0.1'), '10.0.0.1')
  t.equal(urlHost('example.com'), 'example.com')
})

t.test('the registration body carries only fields Consul 1.8 knows', async (t) => {
  const opts = normalizeOptions({ service: { name: 'svc', id: 'svc-1', tags: ['a'], meta: { k: 'v' } }, check: { type: 'http', deregisterCriticalServiceAfter: '90s' } })
  const { body, registration } = buildDefinition({ service: opts.service, check: opts.check, address: '10.0.0.5', port: 8080, healthPath: '/healthz', initialStatus: 'warning', bootId: 'b00t' })
  t.same(body, {
    ID: 'svc-1',
    Name: 'svc',
    Address: '10.0.0.5',
    Port: 8080,
    Tags: ['a'],
    Meta: { k: 'v' },
    Weights: { Passing: 10, Warning: 1 },
    Check: { CheckID: 'service:svc-1:b00t', Name: 'svc http check', Status: 'warning', DeregisterCriticalServiceAfter: '90s', HTTP: 'http://10.0.0.5:8080/healthz', Interval: '10s', Timeout: '5s' }
  })
  t.ok(Object.isFrozen(registration.tags) && Object.isFrozen(registration.meta), 'the exposed view cannot be mutated')

  const tuned = normalizeOptions({ service: { name: 'svc' }, check: { type: 'http', tlsSkipVerify: true, successBeforePassing: 2, failuresBeforeCritical: 3 } })
  const { body: tunedBody } = buildDefinition({ service: tuned.service, check: tuned.check, address: '10.0.0.5', port: 8080, healthPath: '/health', initialStatus: 'passing', bootId: 'b00t' })
  t.match(tunedBody.Check, { TLSSkipVerify: true, SuccessBeforePassing: 2, FailuresBeforeCritical: 3 }, 'optional tuning fields are sent only when set')
  for (const absent of ['TLSSkipVerify', 'SuccessBeforePassing', 'FailuresBeforeCritical', 'Method', 'Header', 'GRPC', 'GRPCUseTLS']) {
    t.notOk(absent in body.Check!, `${absent} is not sent when unset (Consul 1.8 refuses unknown fields, and older agents these)`)
  }

  const probe = normalizeOptions({ service: { name: 'svc' }, check: { method: 'POST', header: { 'x-probe': 'consul' } } })
  t.match(buildDefinition({ service: probe.service, check: probe.check, address: '10.0.0.5', port: 8080, healthPath: '/health', initialStatus: 'passing', bootId: 'b00t' }).body.Check,
    { Method: 'POST', Header: { 'x-probe': ['consul'] } })

  const grpc = normalizeOptions({ service: { name: 'svc' }, check: { type: 'grpc', port: 9090, grpcService: 'users.v1.Users', grpcUseTls: true, tlsSkipVerify: true } })
  const built = buildDefinition({ service: grpc.service, check: grpc.check, address: '::1', port: 8080, healthPath: '/health', initialStatus: 'passing', bootId: 'b00t' })
  t.match(built.body.Check, { GRPC: '[::1]:9090/users.v1.Users', GRPCUseTLS: true, TLSSkipVerify: true, Interval: '10s', Timeout: '5s' })
  t.notOk('HTTP' in built.body.Check! || 'TCP' in built.body.Check!, 'a gRPC check only')
  t.same(built.registration.check, { id: `service:${built.body.ID}:b00t`, type: 'grpc', grpc: '[::1]:9090/users.v1.Users', interval: '10s', timeout: '5s', deregisterCriticalServiceAfter: '60s' })
  const plain = normalizeOptions({ service: { name: 'svc' }, check: { type: 'grpc' } })
  t.match(buildDefinition({ service: plain.service, check: plain.check, address: '10.0.0.5', port: 8080, healthPath: '/health', initialStatus: 'passing', bootId: 'b00t' }).body.Check, { GRPC: '10.0.0.5:8080' }, 'the registered port, no service')
})

t.test('full-jitter backoff stays within [0, min(cap, base·2^n))', async (t) => {
  const opts = { base: 100, cap: 1000 }
  t.equal(fullJitter(0, opts, () => 0.999), 99)
  t.equal(fullJitter(3, opts, () => 0.5), 400)
  t.equal(fullJitter(10, opts, () => 0.999), 999, 'capped')
  t.equal(fullJitter(1000, opts, () => 0.5), 500, 'huge attempts do not overflow')
  t.equal(fullJitter(2, opts, () => 0), 0)
  const real = fullJitter(1, opts)
  t.ok(real >= 0 && real < 200)
})
