import { resolveConnection, type ConsulConnectionOptions } from '../consul/connection.js'
import { ConsulHttp } from '../consul/http.js'
import { ConnectNotReadyError, InvalidOptionError } from '../errors.js'
import type { Logger } from '../util/logger.js'
import { ConnectAuthorizer } from './authorizer.js'
import { ConnectCertificates } from './certificates.js'
import { AUTHORIZER_DEFAULTS, CONNECT_LOOP_DEFAULTS } from './defaults.js'
import { serverTlsOptions, type ConnectServerTlsOptions } from './server-tls.js'

// Fastify creates its server before any plugin runs, so the TLS options of a Connect-native service
// must exist before `Fastify({ https })`: this is the one awaited step before the app is built. The
// plugin's `connect` option then takes the handle and does the rest (registration, rotation, authorization).

/** Marks a handle made by connectNative(): the plugin's `connect` option takes nothing else. */
export const CONNECT_NATIVE: unique symbol = Symbol('@reg/fastify-consul connectNative')

export interface ConnectNativeOptions {
  /** The service this process is: its leaf certificate's SPIFFE `svc`, and the `Target` of every authorize. */
  service: string
  /** How to reach the local agent; every field falls back to Consul's CLI environment, as the plugin's `consul`. */
  consul?: ConsulConnectionOptions | undefined
  /** Where the keepers log; pass the app's logger once it exists, or a pino instance. Default: silent. */
  log?: Logger | undefined
  /** How long to wait for the first leaf certificate and roots, in ms. Default 30000. */
  readyTimeout?: number | undefined
  /**
   * `false` for a service that uses its identity only to call others (an edge gateway serving plain HTTP
   * to the public): no `https` options, no inbound authorization, and the plugin registers it without
   * `Connect.Native`; its dispatchers still dial Connect-native instances with the leaf. Default true.
   */
  inbound?: boolean | undefined
}

/** What every connectNative() handle has: the identity, its keepers, and close(). */
export interface ConnectIdentity {
  readonly [CONNECT_NATIVE]: true
  readonly service: string
  /** Whether this process serves Connect-native (mutual TLS, intentions enforced) or only calls out with its identity. */
  readonly inbound: boolean
  /** The leaf and roots, kept fresh with blocking queries; `state` is 'stale' while the agent cannot be read. */
  readonly certificates: ConnectCertificates
  /** Stops the keepers and closes their connection to the agent. Idempotent; the plugin calls it on close. */
  close (): Promise<void>
}

/** What `connectNative({ inbound: false })` returns: an identity for outbound calls only. */
export interface ConnectNativeOutbound extends ConnectIdentity {
  readonly inbound: false
}

/** What `connectNative()` returns: the options for `Fastify({ https })` and the keepers behind them. */
export interface ConnectNative extends ConnectIdentity {
  readonly inbound: true
  /** `key`, `cert`, `ca` (the Connect roots), `requestCert: true`, `rejectUnauthorized: true`, TLS ≥ 1.2. */
  readonly https: ConnectServerTlsOptions
  /** Inbound authorization against the agent's intentions. */
  readonly authorizer: ConnectAuthorizer
}

const noop = (): void => {}
const silent: Logger = { debug: noop, info: noop, warn: noop, error: noop, child: () => silent }

/**
 * Fetches this service's leaf certificate and the CA roots from the local agent and starts keeping
 * them (and the intentions) fresh. Rejects with FST_REG_CONNECT_NOT_READY when the agent gave no usable
 * pair within `readyTimeout`: a Connect-native service cannot serve without one.
 */
export async function connectNative (opts: ConnectNativeOptions & { inbound: false }): Promise<ConnectNativeOutbound>
export async function connectNative (opts: ConnectNativeOptions & { inbound?: true | undefined }): Promise<ConnectNative>
export async function connectNative (opts: ConnectNativeOptions): Promise<ConnectNative | ConnectNativeOutbound>
export async function connectNative (opts: ConnectNativeOptions): Promise<ConnectNative | ConnectNativeOutbound> {
  const service = (opts as Partial<ConnectNativeOptions> | undefined)?.service
  if (typeof service !== 'string' || !/^[A-Za-z0-9._-]+$/.test(service)) throw new InvalidOptionError('connect.service', 'a service name of [A-Za-z0-9._-] (Connect identities allow no other character)')
  const inbound = opts.inbound ?? true
  if (typeof inbound !== 'boolean') throw new InvalidOptionError('connect.inbound', 'a boolean')
  const readyTimeout = opts.readyTimeout ?? 30_000
  const log = opts.log ?? silent
  const http = new ConsulHttp({ connection: resolveConnection(opts.consul) })
  const certificates = new ConnectCertificates({ http, log, service, tuning: CONNECT_LOOP_DEFAULTS })
  // Outbound only: nobody calls us over Connect, so there are no intentions to watch.
  const authorizer = inbound ? new ConnectAuthorizer({ http, log, target: service, trust: certificates, tuning: AUTHORIZER_DEFAULTS }) : undefined
  let closing: Promise<void> | undefined
  const close = (): Promise<void> => {
    closing ??= Promise.all([certificates.close(), authorizer?.close()]).then(() => http.close())
    return closing
  }
  certificates.start()
  authorizer?.start()
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      certificates.ready,
      new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new ConnectNotReadyError(service)), readyTimeout) })
    ])
  } catch (err) {
    await close()
    throw err
  } finally {
    clearTimeout(timer)
  }
  if (authorizer === undefined) return { [CONNECT_NATIVE]: true, service, inbound: false, certificates, close }
  return { [CONNECT_NATIVE]: true, service, inbound: true, https: serverTlsOptions(certificates), certificates, authorizer, close }
}
