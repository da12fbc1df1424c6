import t from 'tap'
import { X509Certificate, createPrivateKey, randomUUID } from 'node:crypto'
import { createServer } from 'node:tls'
import type { AddressInfo } from 'node:net'
import { connectIdentity, connectLeaf, connectRoots, rotateConnectCa, startConsul, untilLeafOfRoot } from '../src/index.js'

// The Connect CA helpers against a real 1.8.7 -dev agent, whose built-in CA issues the roots and leaves.

const agent = await startConsul({ t })

/** Consul writes serials as colon-separated hex; X509Certificate as plain upper-case hex. */
const plainHex = (serial: string): string => serial.replaceAll(':', '').toUpperCase().replace(/^0+/, '')

t.test('connectRoots(): the trust domain and one active root, listed among the roots', async (t) => {
  const roots = await connectRoots(agent)
  t.match(roots.TrustDomain, /^[0-9a-f-]{36}\.consul$/)
  t.same(roots.Roots.filter((r) => r.Active).map((r) => r.ID), [roots.ActiveRootID], 'the active root is the one ActiveRootID names')
  t.ok(new X509Certificate(roots.Roots[0]!.RootCert).ca, 'a CA certificate')
})

t.test('connectLeaf(): a leaf for the service asked, signed by the active root, with its key, URI and serial', async (t) => {
  const [web, billing, roots] = await Promise.all([connectLeaf(agent, 'web'), connectLeaf(agent, 'billing'), connectRoots(agent)])
  const cert = new X509Certificate(web.cert)
  t.equal(web.uri, `spiffe://${roots.TrustDomain}/ns/default/dc/dc1/svc/web`)
  t.equal(cert.subjectAltName, `URI:${web.uri}`, 'the URI is the certificate\'s')
  t.ok(cert.checkPrivateKey(createPrivateKey(web.key)), 'the key is the certificate\'s')
  t.equal(plainHex(web.serial), cert.serialNumber.replace(/^0+/, ''), 'the serial is the certificate\'s')
  const active = roots.Roots.find((r) => r.Active)!
  t.ok(cert.verify(new X509Certificate(active.RootCert).publicKey), 'signed by the active root')

  // Negative control: another service's leaf carries its own URI, not web's.
  t.equal(billing.uri, `spiffe://${roots.TrustDomain}/ns/default/dc/dc1/svc/billing`)
  t.notMatch(new X509Certificate(billing.cert).subjectAltName ?? '', /svc\/web$/)
  t.not(billing.serial, web.serial)
  t.equal((await connectLeaf(agent, 'web')).serial, web.serial, 'asked again: the agent\'s cached leaf')
})

t.test('connectIdentity(): the leaf with every root and the trust domain', async (t) => {
  const [identity, leaf, roots] = await Promise.all([connectIdentity(agent, 'gateway'), connectLeaf(agent, 'gateway'), connectRoots(agent)])
  t.same(identity, { ...leaf, ca: roots.Roots.map((r) => r.RootCert), trustDomain: roots.TrustDomain })
})

t.test('rotateConnectCa() makes a root of a key we hold the active one; the old root stays listed, inactive; untilLeafOfRoot() waits for a leaf of it', async (t) => {
  const before = await connectRoots(agent)
  const old = before.Roots.find((r) => r.Active)!
  const serverLeaf = await connectLeaf(agent, 'rotating-server')
  const probe = await connectLeaf(agent, 'rotating-probe')
  // A Connect-native-like server: mutual TLS, trusting every root, presenting its leaf of the old root.
  const server = createServer({ cert: serverLeaf.cert, key: serverLeaf.key, ca: [old.RootCert], requestCert: true, rejectUnauthorized: true }, (socket) => socket.end())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const port = (server.address() as AddressInfo).port
  t.type(await untilLeafOfRoot({ port, root: old.RootCert, client: probe, timeout: 5000 }), 'number', 'the old root\'s leaf is seen at once')

  const rotated = await rotateConnectCa(agent)
  const after = await connectRoots(agent)
  t.equal(after.ActiveRootID, rotated.id)
  t.not(rotated.id, before.ActiveRootID)
  t.equal(rotated.trustDomain, before.TrustDomain, 'the trust domain stays')
  t.same(after.Roots.filter((r) => r.Active).map((r) => r.RootCert), [rotated.cert], 'the new root is the only active one')
  t.match(after.Roots.find((r) => r.ID === old.ID), { Active: false }, 'negative control: the old root is still listed, and no longer active')
  t.ok(new X509Certificate(rotated.cert).checkPrivateKey(createPrivateKey(rotated.key)), 'the new root is of the key we hold')
  const fresh = await connectLeaf(agent, 'after-rotation')
  t.ok(new X509Certificate(fresh.cert).verify(new X509Certificate(rotated.cert).publicKey), 'a leaf first asked for now is the new root\'s')

  await t.rejects(untilLeafOfRoot({ port, root: rotated.cert, client: probe, timeout: 300 }), /port \d+ still serves a leaf of another root after 300 ms/,
    'negative control: a server still on its old leaf does not satisfy the wait')
  server.setSecureContext({ cert: fresh.cert, key: fresh.key, ca: [old.RootCert, rotated.cert] })
  t.type(await untilLeafOfRoot({ port, root: rotated.cert, client: probe, timeout: 5000 }), 'number', 'it does once the server presents a leaf of the new root')
})

t.test('errors name the request and Consul\'s answer: a leaf and a rotation refused by a default-deny ACL agent', async (t) => {
  const locked = await startConsul({ t, acl: { masterToken: randomUUID() } })
  await t.rejects(connectLeaf(locked, 'web'), /GET \/v1\/agent\/connect\/ca\/leaf\/web answered 403: /)
  await t.rejects(rotateConnectCa(locked), /PUT \/v1\/connect\/ca\/configuration answered 403: /)
})
