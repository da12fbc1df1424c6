#!/usr/bin/env node
import { ensureConsul } from './ensure-consul.js'
import { ensureDockerCompose } from './ensure-docker-compose.js'
import { ensureHaproxy } from './ensure-haproxy.js'
import { startConsul } from './consul-agent.js'

// `reg-consul ensure` makes sure a binary exists (run once before the test suite, so parallel test
// files never race to fetch it); `reg-consul agent` runs a dev agent with the UI for humans.
const command = process.argv[2] ?? 'agent'

async function main (): Promise<void> {
  if (command === 'ensure') {
    const bin = await ensureConsul({ log: (line) => console.error(`[consul] ${line}`) })
    console.log(bin)
    // docker-compose validates docker-compose.yml in test/docker-compose.test.ts; fetched here for the same reason.
    const compose = await ensureDockerCompose({ log: (line) => console.error(`[docker-compose] ${line}`) })
    console.log(compose)
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
  console.error('usage: reg-consul [ensure|haproxy|agent]')
  process.exitCode = 2
}

main().catch((err: Error) => {
  console.error(err.message)
  process.exit(1)
})
