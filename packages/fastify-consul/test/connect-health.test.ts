import t from 'tap'
import type { TLSSocket } from 'node:tls'
import { startConsul } from '@reg/testkit'
import { ConnectAuthorizer } from '../src/connect/authorizer.js'
import { ConnectCertificates } from '../src/connect/certificates.js'
import { AUTHORIZER_DEFAULTS, CONNECT_LOOP_DEFAULTS } from '../src/connect/defaults.js'
import { serverTlsOptions } from '../src/connect/server-tls.js'
import { consulHttp, within } from './fixtures/discovery-consul.js'
import { recordingLogger } from './fixtures/discovery-logger.js'
import { eventually } from './fixtures/consul-api.js'
import { get, httpsServer } from './fixtures/connect-tls.js'

// Issue #24 item 4, the evidence behind the choice: Consul's HTTP check cannot present a client
// certificate, so against a Connect-native listener it is critical even with TLSSkipVerify (which only
// skips checking *our* certificate). The one way to make it pass on the same port is to stop requiring
// client certificates at the TLS layer, after which every route's safety rests on the request hook.

const agent = await startConsul({ t })
const certs = new ConnectCertificates({ http: consulHttp(t, agent), log: recordingLogger().log, service: 'web', tuning: { ...CONNECT_LOOP_DEFAULTS, wait: 2000 } })
t.teardown(() => certs.close())
certs.start()
const tls = await within('certificates', certs.ready)

async function checkStatus (id: string): Promise<{ Status: string, Output: string }> {
  const res = await fetch(`${agent.url}/v1/agent/checks`)
  const checks = await res.json() as Record<string, { Status: string, Output: string }>
  return checks[id] ?? { Status: 'missing', Output: '' }
}

async function registerHttpCheck (id: string, port: number): Promise<void> {
  const res = await fetch(`${agent.url}/v1/agent/service/register`, {
    method: 'PUT',
    body: JSON.stringify({ Name: 'web', ID: id, Port: port, Connect: { Native: true }, Check: { CheckID: `check-${id}`, HTTP: `https://127.0.0.1:${port}/health`, Interval: '1s', TLSSkipVerify: true } })
  })
  if (!res.ok) throw new Error(`register: ${res.status} ${await res.text()}`)
  t.teardown(() => fetch(`${agent.url}/v1/agent/service/deregister/${id}`, { method: 'PUT' }))
}

t.test('an HTTP check with TLSSkipVerify against the Connect listener: critical, the handshake is refused', async (t) => {
  const { port } = await httpsServer(t, serverTlsOptions(certs), (_req, res) => res.end('ok'))
  await registerHttpCheck('web-mtls', port)
  const status = await eventually(async () => {
    const s = await checkStatus('check-web-mtls')
    return s.Output !== '' ? s : undefined
  }, 'the first probe')
  t.equal(status.Status, 'critical')
  t.comment(`Consul's output: ${status.Output.trim()}`)
})

t.test('passing only if the TLS layer lets callers without a certificate in, leaving every route to the hook', async (t) => {
  const authorizer = new ConnectAuthorizer({ http: consulHttp(t, agent), log: recordingLogger().log, target: 'web', trust: certs, tuning: AUTHORIZER_DEFAULTS })
  t.teardown(() => authorizer.close())
  const { port } = await httpsServer(t, { ...serverTlsOptions(certs), rejectUnauthorized: false }, (req, res) => {
    if (req.url === '/health') return res.end('ok')
    const verdict = authorizer.check(req.socket as TLSSocket)
    const answer = (status: number): void => { res.statusCode = status; res.end() }
    if (verdict === undefined) answer(200)
    else verdict.then(() => answer(200), (err: { statusCode: number }) => answer(err.statusCode))
  })
  await registerHttpCheck('web-open', port)
  await eventually(async () => (await checkStatus('check-web-open')).Status === 'passing', 'the check passing')
  t.equal((await get(port, { ca: [...tls.ca] }, { path: '/users' })).status, 401, 'the API now answers callers without a certificate, if only with 401')
})
