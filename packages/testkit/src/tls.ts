import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { TestLike } from './consul-agent.js'

// Certificates for real HTTPS agents, made with openssl at test time: keys never sit in the repository,
// and every test run gets its own CA, so nothing can pass by trusting something left over.

const run = promisify(execFile)

/** Paths of a certificate and its private key (PEM). */
export interface CertPair {
  cert: string
  key: string
}

export interface IssueOptions {
  /** DNS names for a server certificate (subjectAltName, serverAuth). Absent: a client certificate. */
  dnsNames?: string[]
  /** Already expired when issued: for the "expired certificate" failure. */
  expired?: boolean
}

/** A private certificate authority in a temporary folder. */
export interface TestCa extends CertPair {
  readonly dir: string
  /** Issues a certificate signed by this CA into `dir/<name>.pem` and `dir/<name>-key.pem`. */
  issue (name: string, opts?: IssueOptions): Promise<CertPair>
}

/** What an mTLS agent and its callers need. */
export interface TlsFixture {
  readonly dir: string
  /** The CA that signed the agent's and the client's certificates. */
  readonly ca: TestCa
  /** A second CA that signed nothing the agent trusts: the "wrong CA" on either side. */
  readonly otherCa: TestCa
  /** The agent's certificate: DNS names `server.dc1.consul` and `localhost`, no IP address. */
  readonly server: CertPair
  /** A client certificate signed by `ca`. */
  readonly client: CertPair
  /** The name in the server certificate, as CONSUL_TLS_SERVER_NAME takes it. */
  readonly serverName: string
  /** Removes the folder. Idempotent. */
  remove (): Promise<void>
}

/** A CA needs little: EC P-256 keys are made in milliseconds, where RSA takes a noticeable moment. */
const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

async function openssl (args: string[]): Promise<void> {
  try {
    await run('openssl', args)
  /* c8 ignore start -- only without openssl, or with an openssl that rejects these flags */
  } catch (err) {
    const e = err as Error & { stderr?: string }
    throw new Error(`openssl ${args[0]} failed (openssl is in every Debian image: apt-get install openssl): ${e.stderr ?? e.message}`)
  }
  /* c8 ignore stop */
}

export async function createCa (dir: string, name: string): Promise<TestCa> {
  const cert = join(dir, `${name}.pem`)
  const key = join(dir, `${name}-key.pem`)
  await openssl(['req', '-x509', ...KEY, '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=reg test ${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  return {
    dir,
    cert,
    key,
    async issue (leaf, opts = {}) {
      const out = { cert: join(dir, `${leaf}.pem`), key: join(dir, `${leaf}-key.pem`) }
      const csr = join(dir, `${leaf}.csr`)
      const ext = join(dir, `${leaf}.ext`)
      // Go (Consul) checks extended key usage: serverAuth for the agent, clientAuth for callers.
      await writeFile(ext, opts.dnsNames
        ? `subjectAltName=${opts.dnsNames.map((n) => `DNS:${n}`).join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`
        : 'extendedKeyUsage=clientAuth\n')
      await openssl(['req', ...KEY, '-keyout', out.key, '-out', csr, '-subj', `/CN=${opts.dnsNames?.[0] ?? leaf}`])
      // -days -1 puts notAfter a day before notBefore: expired from the first second.
      await openssl(['x509', '-req', '-in', csr, '-CA', cert, '-CAkey', key, '-set_serial', `0x${randomBytes(8).toString('hex')}`,
        '-days', opts.expired ? '-1' : '2', '-extfile', ext, '-out', out.cert])
      await Promise.all([rm(csr), rm(ext)])
      return out
    }
  }
}

/** A CA, an agent certificate, a client certificate and an unrelated CA, in a fresh temporary folder. */
export async function makeTlsFixture (opts: { t?: TestLike } = {}): Promise<TlsFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'reg-tls-'))
  const serverName = 'server.dc1.consul'
  const [ca, otherCa] = await Promise.all([createCa(dir, 'ca'), createCa(dir, 'other-ca')])
  const [server, client] = await Promise.all([
    ca.issue('server', { dnsNames: [serverName, 'localhost'] }),
    ca.issue('client')
  ])
  const fixture: TlsFixture = {
    dir,
    ca,
    otherCa,
    server,
    client,
    serverName,
    remove: () => rm(dir, { recursive: true, force: true })
  }
  opts.t?.teardown(() => fixture.remove())
  return fixture
}
