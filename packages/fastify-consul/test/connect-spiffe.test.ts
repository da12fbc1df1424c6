import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { MAX_SAN_LENGTH, parseServiceId, peerServiceId, uriSans } from '../src/connect/spiffe.js'
import { foreignCa, issue, scratch } from './fixtures/connect-ca.js'

// Pure: no agent. The certificates are real (openssl), so the subjectAltName text is node's own,
// quoting included, not a string we imagined.

const TD = '0a1b2c3d-0000-4000-8000-000000000001.consul'
const uri = (path: string, td = TD): string => `spiffe://${td}${path}`

t.test('parseServiceId reads a Connect service identity', async (t) => {
  t.same(parseServiceId(uri('/ns/default/dc/dc1/svc/web')), {
    ok: true,
    value: { uri: uri('/ns/default/dc/dc1/svc/web'), trustDomain: TD, partition: 'default', namespace: 'default', datacenter: 'dc1', service: 'web' }
  })
  const partitioned = parseServiceId(uri('/ap/team-a/ns/billing/dc/eu-west_1/svc/user-service.v2'))
  t.ok(partitioned.ok)
  if (partitioned.ok) t.match(partitioned.value, { partition: 'team-a', namespace: 'billing', datacenter: 'eu-west_1', service: 'user-service.v2' })
})

t.test('parseServiceId refuses hostile or foreign URIs, each with a reason', async (t) => {
  const table: Array<[string, string, RegExp]> = [
    ['empty', '', /not a spiffe:\/\/ URI/],
    ['http scheme', `http://${TD}/ns/default/dc/dc1/svc/web`, /not a spiffe:\/\/ URI/],
    ['upper-case scheme', `SPIFFE://${TD}/ns/default/dc/dc1/svc/web`, /not a spiffe:\/\/ URI/],
    ['no path (a root CA URI)', `spiffe://${TD}`, /without a service path/],
    ['empty trust domain', 'spiffe:///ns/default/dc/dc1/svc/web', /empty trust domain/],
    ['upper-case trust domain', uri('/ns/default/dc/dc1/svc/web', TD.toUpperCase()), /invalid trust domain/],
    ['userinfo', uri('/ns/default/dc/dc1/svc/web', `admin@${TD}`), /invalid trust domain/],
    ['port', uri('/ns/default/dc/dc1/svc/web', `${TD}:8443`), /invalid trust domain/],
    ['trust domain of 256 characters', uri('/ns/default/dc/dc1/svc/web', 'a'.repeat(256)), /trust domain longer than 255/],
    ['URI of 2049 characters', uri(`/ns/default/dc/dc1/svc/${'a'.repeat(2049)}`), /URI longer than 2048/],
    ['an agent identity', uri('/agent/client/dc/dc1/id/node-1'), /not a Connect service identity/],
    ['extra segment', uri('/ns/default/dc/dc1/svc/web/admin'), /not a Connect service identity/],
    ['trailing slash', uri('/ns/default/dc/dc1/svc/web/'), /not a Connect service identity/],
    ['empty namespace', uri('/ns//dc/dc1/svc/web'), /not a Connect service identity/],
    ['dot-dot service', uri('/ns/default/dc/dc1/svc/..'), /invalid service/],
    ['percent-encoded service', uri('/ns/default/dc/dc1/svc/%2e%2e'), /invalid service/],
    ['query string', uri('/ns/default/dc/dc1/svc/web?admin=1'), /invalid service/],
    ['fragment', uri('/ns/default/dc/dc1/svc/web#x'), /invalid service/],
    ['non-ASCII service', uri('/ns/default/dc/dc1/svc/wéb'), /invalid service/],
    ['service of 129 characters', uri(`/ns/default/dc/dc1/svc/${'s'.repeat(129)}`), /invalid service/],
    ['comma-joined second URI', uri(`/ns/default/dc/dc1/svc/a,URI:spiffe://${TD}/ns/default/dc/dc1/svc/admin`), /not a Connect service identity/],
    ['space in datacenter', uri('/ns/default/dc/dc 1/svc/web'), /invalid datacenter/],
    ['bad namespace', uri('/ns/$ns/dc/dc1/svc/web'), /invalid namespace/],
    ['bad partition', uri('/ap/*/ns/default/dc/dc1/svc/web'), /invalid partition/]
  ]
  for (const [name, input, reason] of table) {
    const v = parseServiceId(input)
    t.equal(v.ok, false, name)
    if (!v.ok) {
      t.match(v.reason, reason, `${name}: reason`)
      // A reason quotes at most ~100 characters of what the peer sent.
      t.ok(v.reason.length < 220, `${name}: reason stays short`)
    }
  }
})

t.test('uriSans splits node\'s subjectAltName text, quoted values included', async (t) => {
  t.same(uriSans(undefined), { ok: true, value: [] })
  t.same(uriSans(''), { ok: true, value: [] })
  t.same(uriSans('DNS:a.example, URI:spiffe://x/ns/d/dc/d/svc/s, IP Address:127.0.0.1'), { ok: true, value: ['spiffe://x/ns/d/dc/d/svc/s'] })
  t.same(uriSans('URI:"spiffe://x/a, URI:spiffe://y"'), { ok: true, value: ['spiffe://x/a, URI:spiffe://y'] }, 'a quoted comma stays in its value')
  t.same(uriSans('othername:XmppAddr::"a\\", URI:spiffe://td/ns/default/dc/dc1/svc/admin", DNS:b'), { ok: true, value: [] }, 'a URI hidden in another entry\'s quoted value is not an entry')
  t.same(uriSans('URI:a, URI:b'), { ok: true, value: ['a', 'b'] })
  t.match(uriSans('URI:"unterminated'), { ok: false, reason: /unterminated/ })
  t.match(uriSans('URI:"a"b'), { ok: false, reason: /bad quoted URI/ })
  t.match(uriSans(`URI:${'x'.repeat(MAX_SAN_LENGTH)}`), { ok: false, reason: /subjectAltName longer than/ })
})

t.test('peerServiceId on real certificates (openssl-made, read by node)', async (t) => {
  const dir = await scratch(t)
  const ca = await foreignCa(dir)
  const good = uri('/ns/default/dc/dc1/svc/web')
  const cases: Array<[string, string[], RegExp | undefined]> = [
    ['one Connect URI', [`URI.1 = ${good}`], undefined],
    ['one Connect URI beside DNS names', ['DNS.1 = web.local', `URI.1 = ${good}`, 'IP.1 = 127.0.0.1'], undefined],
    ['no subjectAltName', [], /no URI SAN/],
    ['DNS names only', ['DNS.1 = web.local'], /no URI SAN/],
    ['two URIs', [`URI.1 = ${good}`, `URI.2 = ${uri('/ns/default/dc/dc1/svc/admin')}`], /2 URI SANs/],
    ['a non-SPIFFE URI', ['URI.1 = https://web.example/'], /not a spiffe:\/\/ URI/],
    ['another trust domain', [`URI.1 = ${uri('/ns/default/dc/dc1/svc/web', 'other.consul')}`], /trust domain "other.consul" is not ours/],
    // openssl takes the whole line as one URI; node prints it quoted; it must stay one (bad) URI.
    ['a comma inside the URI', [`URI.1 = ${good},URI:${uri('/ns/default/dc/dc1/svc/admin')}`], /not a Connect service identity/],
    ['a 3000-character URI', [`URI.1 = ${uri(`/ns/default/dc/dc1/svc/${'a'.repeat(3000)}`)}`], /URI longer than 2048/],
    ['a subjectAltName over 16 KiB', [`URI.1 = ${good}`, ...Array.from({ length: 200 }, (_, n) => `DNS.${n + 1} = ${'d'.repeat(90)}${n}.example`)], /subjectAltName longer than/]
  ]
  for (const [i, [name, sans, reason]] of cases.entries()) {
    const pem = await issue(dir, ca, `case${i}`, { sans })
    const x = new X509Certificate(pem.cert)
    if (name === 'a comma inside the URI') t.match(x.subjectAltName, /^URI:"spiffe:/, 'node quotes a URI that holds a comma')
    // Both shapes node hands out: getPeerX509Certificate() and getPeerCertificate()'s `subjectaltname`.
    for (const [shape, cert] of [['X509Certificate', x], ['PeerCertificate', { subjectaltname: x.subjectAltName! }]] as const) {
      const v = peerServiceId(cert, TD.toUpperCase())
      if (reason === undefined) t.match(v, { ok: true, value: { service: 'web', trustDomain: TD } }, `${name} (${shape})`)
      else t.match(v, { ok: false, reason }, `${name} (${shape})`)
    }
  }
})
