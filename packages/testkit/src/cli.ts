#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { ensureConsul } from './ensure-consul.js'
import { ensureChromium } from './ensure-chromium.js'
import { ensureDockerCompose } from './ensure-docker-compose.js'
import { ensureHaproxy } from './ensure-haproxy.js'
import { NODE_VERSIONS, ensureNode } from './ensure-node.js'
import { ensureVictoriaMetrics } from './ensure-victoria-metrics.js'
import { startConsul } from './consul-agent.js'
import { testOnNode } from './test-on-node.js'

// `reg-consul ensure` makes sure a binary exists (run once before the test suite, so parallel test
// files never race to fetch it); `reg-consul agent` runs a dev agent with the UI for humans.
// `reg-consul ensure-node [major…]` prints the pinned Node.js binaries, fetching them if needed;
// `reg-consul test-on-node [major…] [--package dir]…` runs those packages' tap suites on them.
const command = process.argv[2] ?? 'agent'

/** The plugin packages: what users install, so what must pass on every supported Node.js line. */
const PLUGIN_PACKAGES = ['packages/fastify-consul', 'packages/fastify-health']

/**
 * On the extra Node.js lines, fastify-consul runs what those lines can change, all against real agents:
 * TLS and mTLS to Consul (OpenSSL's error codes differ between 20 and 22+), unix sockets, the HTTP
 * client, and the undici dispatcher with its retries, ejection and hostile entries. fastify-health is
 * small and runs whole. The default Node runs everything, with the coverage gate.
 */
const LTS_FILES: Readonly<Record<string, readonly string[]>> = {
  'packages/fastify-consul': [
    'test/tls-agent.test.ts', 'test/tls-failure.test.ts', 'test/unix-socket.test.ts', 'test/consul-http.test.ts',
    'test/connection.test.ts', 'test/dispatcher.test.ts', 'test/hostile-entries.test.ts', 'test/registration.test.ts'
  ]
}

function majorsOf (args: string[]): number[] {
  const pinned = Object.keys(NODE_VERSIONS).map(Number)
  return args.length === 0 ? pinned : args.map(Number)
}

async function main (): Promise<void> {
  if (command === 'ensure') {
    const bin = await ensureConsul({ log: (line) => console.error(`[consul] ${line}`) })
    console.log(bin)
    // docker-compose validates docker-compose.yml in test/docker-compose.test.ts; fetched here for the same reason.
    const compose = await ensureDockerCompose({ log: (line) => console.error(`[docker-compose] ${line}`) })
    console.log(compose)
    // The scraper that finds the apps through Consul (apps/gateway/test/scrape.test.ts), and the browser
    // that watches the gateway's live view (apps/gateway/test/browser.test.ts).
    console.log(await ensureVictoriaMetrics({ log: (line) => console.error(`[victoria-metrics] ${line}`) }))
    console.log(await ensureChromium({ log: (line) => console.error(`[chromium] ${line}`) }))
    return
  }
  if (command === 'haproxy') {
    // Not part of `ensure`: only `pnpm bench` needs HAProxy, and installing it takes root.
    console.log(await ensureHaproxy({ log: (line) => console.error(`[haproxy] ${line}`) }))
    return
  }
  if (command === 'agent') {
    const port = Number(process.env.CONSUL_DEV_PORT ?? 8500)
    const agent = await startConsul({ httpPort: port, args: ['-ui'] })
    console.log(`consul dev agent: ${agent.url}  (UI: ${agent.url}/ui)  Ctrl-C stops it`)
    const stop = (): void => { agent.stop().then(() => process.exit(0), () => process.exit(1)) }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    return
  }
  if (command === 'ensure-node') {
    for (const major of majorsOf(process.argv.slice(3))) {
      console.log(await ensureNode(major, { log: (line) => console.error(`[node] ${line}`) }))
    }
    return
  }
  if (command === 'test-on-node') {
    const { values, positionals } = parseArgs({
      args: process.argv.slice(3),
      allowPositionals: true,
      options: { package: { type: 'string', multiple: true } }
    })
    const runs = await testOnNode({
      majors: majorsOf(positionals),
      packages: values.package ?? PLUGIN_PACKAGES,
      files: LTS_FILES,
      log: (line) => console.error(`[test-on-node] ${line}`)
    })
    for (const run of runs) console.error(`[test-on-node] ${run.ok ? 'passed' : 'FAILED'}: ${run.package} on Node.js ${run.version}`)
    if (runs.some((run) => !run.ok)) process.exitCode = 1
    return
  }
  console.error('usage: reg-consul [ensure|haproxy|agent|ensure-node [major…]|test-on-node [major…] [--package dir]…]')
  process.exitCode = 2
}

main().catch((err: Error) => {
  console.error(err.message)
  process.exit(1)
})
