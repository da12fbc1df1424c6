import { Resolver } from 'node:dns/promises'
import { Agent, request } from 'undici'

// P20's and P21's anchors: Consul's own failover, used as an application without a client library uses
// it. A prepared query with `Failover.Datacenters` answers with the nearest datacenter that has healthy
// instances; the client asks it before every request, over HTTP or through Consul's DNS (TTL 0), and
// sends to one of the instances it returned. Nothing is cached, so each request sees Consul's latest word.

/** A prepared query on one agent: its id for `/v1/query/<id>/execute`, its name for `<name>.query.consul`. */
export interface PreparedQuery { id: string, name: string }

/**
 * Creates a prepared query for `service` that fails over to `datacenters` in order. `OnlyPassing`
 * stays false, Consul's default: warning instances are served and critical ones are not, as our watch
 * does without `passingOnly`. The DNS answers carry TTL 0, so no resolver may keep them.
 */
export async function createPreparedQuery (agentUrl: string, name: string, service: string, datacenters: string[]): Promise<PreparedQuery> {
  const res = await fetch(`${agentUrl}/v1/query`, {
    method: 'POST',
    body: JSON.stringify({ Name: name, Service: { Service: service, Failover: { Datacenters: datacenters }, OnlyPassing: false }, DNS: { TTL: '0s' } })
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`POST /v1/query: ${res.status} ${text.trim()}`)
  return { id: (JSON.parse(text) as { ID: string }).ID, name }
}

interface ExecuteAnswer {
  Datacenter: string
  Nodes: Array<{ Service: { Address: string, Port: number } }>
}

/** One of `list`, at random: Consul shuffles its answers too, and a client takes what it is given. */
const any = <T>(list: readonly T[]): T | undefined => list[Math.floor(Math.random() * list.length)]

/**
 * A client that executes the prepared query before every request (`GET /v1/query/<id>/execute`) and
 * sends to one of the instances it returned; `seen` hears the datacenter of each answer (P21 counts
 * how often the answers changed direction). No instance is an error, which fails the request.
 */
export function queryLookup (agentUrl: string, query: PreparedQuery, seen: (datacenter: string) => void = () => {}): { origin (): Promise<string>, close (): Promise<void> } {
  // Its own kept-alive connections to the agent: a lookup per request must not pay a handshake each.
  const agent = new Agent()
  return {
    async origin () {
      const res = await request(`${agentUrl}/v1/query/${query.id}/execute`, { dispatcher: agent })
      if (res.statusCode !== 200) {
        await res.body.dump()
        throw new Error(`execute ${query.name}: ${res.statusCode}`)
      }
      const answer = await res.body.json() as ExecuteAnswer
      seen(answer.Datacenter)
      const node = any(answer.Nodes)
      if (node === undefined) throw new Error(`${query.name}: no healthy instance in any datacenter`)
      // The replicas register their address (bench/src/replicas.ts), so Service.Address is never empty here.
      return `http://${node.Service.Address}:${node.Service.Port}`
    },
    async close () {
      await agent.close()
    }
  }
}

/**
 * A client that resolves the prepared query through Consul's DNS before every request: the SRV record
 * of `<name>.query.consul` gives a port and a target, and the target's A record the address (Consul
 * names it `<hex ip>.addr.<dc>.consul`). One query at a time per lookup, no cache: TTL 0.
 */
export function dnsLookup (dnsPort: number, query: PreparedQuery): () => Promise<string> {
  const resolver = new Resolver({ timeout: 1000, tries: 2 })
  resolver.setServers([`127.0.0.1:${dnsPort}`])
  return async () => {
    const srv = any(await resolver.resolveSrv(`${query.name}.query.consul`))!
    const [address] = await resolver.resolve4(srv.name)
    return `http://${address!}:${srv.port}`
  }
}
