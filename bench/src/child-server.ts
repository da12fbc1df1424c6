import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'

export interface ChildServer {
  url: string
  port: number
  child: ChildProcess
  stop (): Promise<void>
}

/**
 * Runs one of ./servers/*.js in its own process, so the load generator never shares an event loop
 * with the server it measures. The script sends `{ port }` over IPC once it listens.
 */
export async function startChildServer (script: string, env: Record<string, string> = {}, execArgv: string[] = []): Promise<ChildServer & { message: Record<string, number> }> {
  // The compiled script, whether this module runs from src/ (tests) or dist/ (pnpm bench).
  const child = fork(new URL(`../dist/servers/${script}`, import.meta.url), [], { env: { ...process.env, ...env }, execArgv: [...process.execArgv, ...execArgv], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  // Piped, not inherited: a server left behind by a timed-out test must hold none of the run's pipes
  // (the CI's turbo waits on them).
  child.stderr!.pipe(process.stderr, { end: false })
  const exited = once(child, 'exit')
  const [msg] = await Promise.race([
    once(child, 'message') as Promise<[{ port: number } & Record<string, number>]>,
    exited.then(([code]) => { throw new Error(`${script} exited with ${String(code)} before listening`) })
  ])
  return {
    message: msg,
    url: `http://127.0.0.1:${msg.port}`,
    port: msg.port,
    child,
    async stop () {
      // A no-op signal for a child that already exited; `exited` settles either way.
      child.kill('SIGTERM')
      await exited
    }
  }
}
