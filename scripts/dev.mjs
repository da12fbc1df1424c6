#!/usr/bin/env node
// `pnpm dev`: a Consul dev agent (unless CONSUL_HTTP_ADDR answers) plus the sample apps.
// Filled in by the demo issue (#7); for now it runs the agent with the UI until Ctrl-C.
import { spawn } from 'node:child_process'

const child = spawn(process.execPath, [new URL('../packages/testkit/dist/cli.js', import.meta.url).pathname, 'agent'], { stdio: 'inherit' })
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
child.on('exit', (code) => process.exit(code ?? 0))
