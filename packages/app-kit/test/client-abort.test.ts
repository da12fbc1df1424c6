import { once } from 'node:events'
import { connect, type AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { logClientAbort } from '../src/index.js'

// On a real socket: the 'close' of a response that never finished is what the hook listens to.

async function server (t: Test): Promise<{ port: number, records: Array<Record<string, unknown>> }> {
  const records: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk: Buffer, _encoding, done) { records.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done() } })
  const app = Fastify({ logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  app.addHook('onRequest', logClientAbort)
  app.get('/slow', async () => { await new Promise((resolve) => setTimeout(resolve, 300)); return 'late' })
  app.get('/fast', async () => 'now')
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { port: (app.server.address() as AddressInfo).port, records }
}

const ABORT_LINE = 'client closed the connection before the response was complete'

t.test('a client that hangs up before the answer is logged once, at info, as 499', async (t) => {
  const { port, records } = await server(t)
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.end('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
  await new Promise((resolve) => setTimeout(resolve, 50))
  socket.destroy()
  while (!records.some((r) => r.statusCode === 499)) await new Promise((resolve) => setTimeout(resolve, 10))
  const aborts = records.filter((r) => r.statusCode === 499)
  t.equal(aborts.length, 1)
  t.match(aborts[0], { level: 30, msg: ABORT_LINE })
})

t.test('a finished response is not an abort (negative control)', async (t) => {
  const { port, records } = await server(t)
  const res = await fetch(`http://127.0.0.1:${port}/fast`)
  t.equal(await res.text(), 'now')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.notOk(records.some((r) => r.statusCode === 499 || r.msg === ABORT_LINE))
})
