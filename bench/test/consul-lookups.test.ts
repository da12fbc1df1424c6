import { once } from 'node:events'
import { createServer } from 'node:http'
import t from 'tap'
import { createPreparedQuery, queryLookup } from '../src/consul-lookups.js'

// P20's and P21's prepared-query anchor against a stand-in for the agent: what it does with each kind
// of answer (their smoke rounds run it against real agents, where these answers do not come on cue).

t.test('queryLookup(): an instance from each execute, its datacenter heard; an error or an empty answer fails the lookup', async (t) => {
  const answers: Array<{ status: number, body: unknown }> = [
    { status: 200, body: { ID: 'q-1' } },
    { status: 200, body: { Datacenter: 'dc2', Nodes: [{ Service: { Address: '127.0.0.9', Port: 4001 } }] } },
    { status: 200, body: { Datacenter: 'dc1', Nodes: [] } },
    { status: 500, body: 'rpc error' },
    { status: 400, body: 'bad query' }
  ]
  const paths: string[] = []
  const server = createServer((req, res) => {
    paths.push(`${req.method!} ${req.url!}`)
    const next = answers.shift()!
    res.statusCode = next.status
    res.end(typeof next.body === 'string' ? next.body : JSON.stringify(next.body))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`

  const query = await createPreparedQuery(url, 'users', 'user-service', ['dc2'])
  t.same(query, { id: 'q-1', name: 'users' })
  const seen: string[] = []
  const lookup = queryLookup(url, query, (dc) => seen.push(dc))
  t.equal(await lookup.origin(), 'http://127.0.0.9:4001')
  await t.rejects(lookup.origin(), /users: no healthy instance in any datacenter/)
  await t.rejects(lookup.origin(), /execute users: 500/)
  t.same(seen, ['dc2', 'dc1'], 'the datacenter of every answer')
  await lookup.close()
  await t.rejects(createPreparedQuery(url, 'users', 'user-service', ['dc2']), /POST \/v1\/query: 400/)
  t.same(paths, ['POST /v1/query', 'GET /v1/query/q-1/execute', 'GET /v1/query/q-1/execute', 'GET /v1/query/q-1/execute', 'POST /v1/query'])
})
