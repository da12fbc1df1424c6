import Consul from 'consul'
import { Agent as HttpsAgent } from 'node:https'
import { urlHost } from './address.js'
import { basicAuthorization, type ResolvedConnection } from './connection.js'
import type { ConsulHttp } from './http.js'

/**
 * The `consul` npm client on the same settings: address or unix socket, token, basic auth, partition,
 * CA, client certificate and server name. It cannot follow rotated files (its TLS agent and token are
 * fixed when it is built) and has no namespace option; fastify.consul's own requests do both.
 */
export function consulClient (conn: ResolvedConnection, http: ConsulHttp): Consul {
  const creds = http.credentials
  const defaults = { token: creds.token, partition: conn.partition }
  return new Consul({
    host: urlHost(conn.host),
    port: conn.port,
    secure: conn.secure,
    defaults: creds.token === undefined && conn.partition === undefined ? undefined : defaults,
    agent: conn.secure ? new HttpsAgent({ ...http.tlsOptions(creds), keepAlive: true }) : undefined,
    // papi (under `consul`) takes these http.request options; the client's types do not list them.
    ...{
      socketPath: conn.socketPath,
      headers: conn.auth === undefined ? undefined : { authorization: basicAuthorization(conn.auth) }
    }
  } as ConstructorParameters<typeof Consul>[0])
}
