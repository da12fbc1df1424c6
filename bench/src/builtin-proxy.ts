import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { ensureConsul, freePorts, type ConsulAgent } from '@reg/testkit'

// R14's peer: Consul 1.8.7's own sidecar, `consul connect proxy`, as its documentation runs it in front
// of an app (`-service <name> -service-addr <app> -listen <public>`). It takes its leaf certificate and
// roots from the local agent, accepts mutual TLS on `-listen`, authorizes each new connection with the
// agent (`/v1/agent/connect/authorize`, during the handshake) and pipes the bytes to the app: a layer-4
// proxy. Envoy, the other sidecar Consul drives, has no package on this box (not in Debian, and the
// npm/PyPI names "envoy" are unrelated tools), so it cannot be the peer here.

export interface BuiltinProxy {
  port: number
  child: ChildProcess
  /** What the proxy wrote, for an error message. */
  log (): string
  stop (): Promise<void>
}

export async function startBuiltinProxy (agent: ConsulAgent, service: string, appPort: number): Promise<BuiltinProxy> {
  const [port] = await freePorts(1)
  const child = spawn(await ensureConsul(), ['connect', 'proxy', '-http-addr', agent.address, '-service', service, '-service-addr', `127.0.0.1:${appPort}`, '-listen', `127.0.0.1:${port!}`, '-log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (b: Buffer): void => { output = (output + b.toString()).slice(-4000) }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const exited = once(child, 'exit')
  return {
    port: port!,
    child,
    log: () => output,
    async stop () {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
    }
  }
}
