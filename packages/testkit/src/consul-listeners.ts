import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startConsul, type ConsulAgent, type StartConsulOptions } from './consul-agent.js'
import { freePorts } from './free-ports.js'
import type { TlsFixture } from './tls.js'

// Agents whose HTTP API is reached the way production reaches it: over HTTPS with mutual TLS, or over
// a unix socket. Each keeps its plain loopback HTTP port too, so tests can seed and read Consul with
// fetch() while the code under test is given only the HTTPS address or the socket.

type BaseOptions = Pick<StartConsulOptions, 't' | 'acl' | 'readyTimeout'>

export interface HttpsConsulAgent extends ConsulAgent {
  readonly httpsPort: number
  /** `127.0.0.1:<httpsPort>`: the certificate names no IP, so callers need CONSUL_TLS_SERVER_NAME. */
  readonly httpsAddress: string
}

export interface StartHttpsConsulOptions extends BaseOptions {
  tls: TlsFixture
  /** `verify_incoming_https`: callers must present a certificate signed by `tls.ca`. Default true. */
  verifyIncoming?: boolean
  /** The agent's certificate; default `tls.server`. An expired one tests the "expired" failure. */
  server?: { cert: string, key: string }
}

/** A dev agent with an HTTPS port (`ports { https }`, `ca_file`, `cert_file`, `key_file`). */
export async function startHttpsConsul (opts: StartHttpsConsulOptions): Promise<HttpsConsulAgent> {
  const [httpsPort] = await freePorts(1) as [number]
  const server = opts.server ?? opts.tls.server
  const config = [
    `ports { https = ${httpsPort} }`,
    `ca_file = ${JSON.stringify(opts.tls.ca.cert)}`,
    `cert_file = ${JSON.stringify(server.cert)}`,
    `key_file = ${JSON.stringify(server.key)}`,
    `verify_incoming_https = ${opts.verifyIncoming ?? true}`
  ].join('\n')
  const agent = await startConsul({ t: opts.t, acl: opts.acl, readyTimeout: opts.readyTimeout, config })
  return Object.assign(agent, { httpsPort, httpsAddress: `127.0.0.1:${httpsPort}` })
}

export interface UnixConsulAgent extends ConsulAgent {
  /** The socket's path; CONSUL_HTTP_ADDR is `unix://` + this. */
  readonly socketPath: string
}

/** A dev agent that also serves its HTTP API on a unix socket (`addresses { http = "unix://…" }`). */
export async function startUnixConsul (opts: BaseOptions = {}): Promise<UnixConsulAgent> {
  // Short and private: a socket path must fit in 107 bytes, and a folder of our own is ours to remove.
  const dir = await mkdtemp(join(tmpdir(), 'reg-sock-'))
  const socketPath = join(dir, 'consul.sock')
  let agent: ConsulAgent
  try {
    agent = await startConsul({ t: opts.t, acl: opts.acl, readyTimeout: opts.readyTimeout, config: `addresses { http = "unix://${socketPath} 127.0.0.1" }` })
  /* c8 ignore start -- only when the agent cannot start at all */
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  /* c8 ignore stop */
  const stop = agent.stop
  return Object.assign(agent, {
    socketPath,
    async stop () {
      await stop()
      await rm(dir, { recursive: true, force: true })
    }
  })
}
