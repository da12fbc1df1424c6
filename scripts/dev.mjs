#!/usr/bin/env node
// `pnpm dev`: the demo. A Consul agent (CONSUL_HTTP_ADDR if it answers, else a dev agent on
// 127.0.0.1:8500 with the UI), three user-service replicas (3001–3003) sharing one SQLite file, and the
// gateway (8080), with prefixed, readable logs. Ctrl-C shuts everything down gracefully: every app
// deregisters, and only once all have exited does the agent stop, if we started it.
import { spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { prettyFactory } from 'pino-pretty'

const root = fileURLToPath(new URL('..', import.meta.url))
const prettify = prettyFactory({ colorize: process.stdout.isTTY, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true })
const colors = [36, 33, 35, 32, 34]

function say (line) {
  process.stdout.write(`\x1b[1m[dev]\x1b[0m ${line}\n`)
}

async function reachable (address) {
  const url = /^https?:\/\//.test(address) ? address : `http://${address}`
  try {
    const res = await fetch(`${url}/v1/status/leader`, { signal: AbortSignal.timeout(1000) })
    return res.ok && (await res.text()).length > 2
  } catch {
    return false
  }
}

/**
 * A dev agent with the UI on 127.0.0.1:8500, through the testkit's CLI (`pnpm consul`), in its own process
 * group: a terminal's Ctrl-C goes to the whole foreground group, and the agent must outlive the apps, which
 * deregister through it. stop() ends it, after every app has exited.
 */
function startAgent () {
  const child = spawn(process.execPath, [`${root}/packages/testkit/dist/cli.js`, 'agent'], {
    env: { ...process.env, CONSUL_DEV_PORT: '8500' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  return new Promise((resolve, reject) => {
    let ready = false
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        // Its ready line says "Ctrl-C stops it", which is not so here: we stop it.
        if (!ready && line.startsWith('consul dev agent:')) {
          ready = true
          resolve({ child, exited })
        } else {
          process.stdout.write(`[consul] ${line}\n`)
        }
      })
    }
    exited.then(() => { if (!ready) reject(new Error('the Consul dev agent exited before it was ready')) })
  })
}

let agent
let consulAddress = process.env.CONSUL_HTTP_ADDR
if (consulAddress && await reachable(consulAddress)) {
  say(`using the Consul agent at ${consulAddress}`)
} else if (await reachable('127.0.0.1:8500')) {
  consulAddress = '127.0.0.1:8500'
  say('using the Consul agent already running on 127.0.0.1:8500')
} else {
  say('starting a Consul dev agent on 127.0.0.1:8500 …')
  agent = await startAgent()
  consulAddress = '127.0.0.1:8500'
}

const dataDir = `${root}/.cache/dev`
mkdirSync(dataDir, { recursive: true })
const children = []

function run (name, script, env) {
  const color = colors[children.length % colors.length]
  const prefix = process.stdout.isTTY ? `\x1b[${color}m[${name}]\x1b[0m` : `[${name}]`
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, CONSUL_HTTP_ADDR: consulAddress, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Own process group: a terminal's Ctrl-C reaches only us, and we send each app exactly one SIGTERM.
    // (close-with-grace treats a second signal as "exit now", which would skip the graceful drain.)
    detached: true
  })
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      let text = line
      try {
        text = prettify(JSON.parse(line)).trimEnd()
      } catch {}
      process.stdout.write(`${prefix} ${text}\n`)
    })
  }
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    say(`${name} exited (${signal ?? code})`)
    resolve()
  }))
  children.push({ name, child, exited })
}

const userService = `${root}/apps/user-service/dist/server.js`
for (const n of [1, 2, 3]) {
  run(`user-service-${n}`, userService, { PORT: String(3000 + n), SERVICE_ID: `user-service-${n}`, USERS_DB: `${dataDir}/users.db` })
}
// The live view is on here (off by default: it shows internal addresses).
run('gateway', `${root}/apps/gateway/dist/server.js`, { PORT: '8080', SERVICE_ID: 'gateway-1', GATEWAY_DASHBOARD: 'true' })

// REG_CONNECT=true (inherited by every app): the replicas serve Connect-native mTLS only (their public
// /health above then needs a certificate: read the admin port's), and the gateway calls them with its leaf.
const connectHints = /^(true|1)$/i.test(process.env.REG_CONNECT ?? '')
  ? `
  Connect (REG_CONNECT=true): the gateway calls the replicas over mutual TLS, checked against intentions.
    consul intention create -deny gateway user-service   # the gateway's calls turn into 403 FST_REG_CONNECT_FORBIDDEN within a second
    consul intention delete gateway user-service         # and are served again`
  : ''
const consulUrl = /^https?:\/\//.test(consulAddress) ? consulAddress : `http://${consulAddress}`
setTimeout(() => {
  say(`
  Gateway      http://127.0.0.1:8080/users
  Live view    http://127.0.0.1:9080/_gateway/     (which replicas the gateway routes to, ejections, share of traffic)
  Consul UI    ${consulUrl}/ui/dc1/services
  Metrics      http://127.0.0.1:9080/metrics  http://127.0.0.1:4001/metrics  http://127.0.0.1:4002/metrics  http://127.0.0.1:4003/metrics
               (each app's admin port, PORT + 1000, on 127.0.0.1 only; its public port serves none of this)
  Try:
    curl -si -X POST localhost:8080/users -H 'content-type: application/json' -d '{"name":"Ada","email":"ada@example.com"}'
    for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%header{x-instance-id}\\n' localhost:8080/users; done   # replicas rotate
    kill -9 <pid of a replica>   # traffic routes around it at once (watch its row in the live view); Consul marks it critical
    curl -s localhost:3001/health | jq    # what Consul's check reads: the verdict only
    curl -s localhost:4001/health | jq    # every check's output, on the admin port
  Ctrl-C stops everything gracefully (each app deregisters first).${connectHints}`)
  for (const { name, child } of children) say(`${name} pid ${child.pid}`)
}, 1500).unref()

let stopping = false
async function stop () {
  if (stopping) return
  stopping = true
  say('shutting down …')
  for (const { child } of children) if (child.exitCode === null) child.kill('SIGTERM')
  await Promise.all(children.map((c) => c.exited))
  if (agent) {
    say('every app has exited; stopping the Consul agent')
    agent.child.kill('SIGTERM')
    await agent.exited
  }
  process.exit(0)
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
// If we die some other way, leave nothing running: the apps at once, the agent gracefully (it is its own group).
process.on('exit', () => {
  for (const { child } of children) if (child.exitCode === null) child.kill('SIGKILL')
  if (agent?.child.exitCode === null) agent.child.kill('SIGTERM')
})
