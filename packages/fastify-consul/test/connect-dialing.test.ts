import t from 'tap'
import { serverIdentityCheck } from '../src/discovery/dispatch/connect-dialing.js'
import { classifyFailure } from '../src/index.js'

// The outbound server-identity check (Go's connect package's): pure logic on what node hands
// checkServerIdentity. The end-to-end refusal of a real impostor is in connect-outbound.test.ts.

const TD = '11111111-2222-3333-4444-555555555555.consul'
const check = serverIdentityCheck('api', TD)
const cert = (san: string | undefined): never => ({ subjectaltname: san }) as never

t.test('the server must be the service we meant to reach, in our trust domain', async (t) => {
  t.equal(check('127.0.0.1', cert(`URI:spiffe://${TD}/ns/default/dc/dc1/svc/api`)), undefined, 'the target service: accepted')
  t.equal(check('127.0.0.1', cert(`URI:spiffe://${TD}/ns/default/dc/dc2/svc/api`)), undefined, 'the same service in another datacenter (failover): accepted')
  const refusals: Array<[string | undefined, RegExp]> = [
    [`URI:spiffe://${TD}/ns/default/dc/dc1/svc/billing`, /certificate is for service "billing"/],
    [`URI:spiffe://${TD}/ns/default/dc/dc1/svc/api-admin`, /certificate is for service "api-admin"/],
    ['URI:spiffe://other.consul/ns/default/dc/dc1/svc/api', /trust domain "other.consul" is not ours/],
    [undefined, /no URI SAN/],
    ['DNS:api.service.consul', /no URI SAN/],
    [`URI:spiffe://${TD}/ns/default/dc/dc1/svc/api, URI:spiffe://${TD}/ns/default/dc/dc1/svc/billing`, /2 URI SANs/],
    [`URI:spiffe://${TD}/agent/client/dc/dc1/id/node`, /not a Connect service identity/]
  ]
  for (const [san, reason] of refusals) {
    const err = check('127.0.0.1', cert(san)) as Error & { code?: string } | undefined
    t.equal(err?.code, 'FST_REG_CONNECT_UPSTREAM_REFUSED', String(san))
    t.match(err?.message, reason)
    // A refusal is a connection failure for outlier detection: ejected at once, never-sent, so retried elsewhere.
    t.match(classifyFailure(err!), { kind: 'connect', neverSent: true })
  }
})
