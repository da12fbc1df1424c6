import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'

// R19's peer child under a shell that forks (dash, Debian's /bin/sh, as `consul lock` runs it on a
// machine with no $SHELL): the shell is killed alone, the child is re-parented. It must say "lost" and
// end, or it runs on without the lock and holds the test run's pipes (a CI run waited 90 minutes on one).
const CHILD = fileURLToPath(new URL('../dist/servers/lock-child.js', import.meta.url))

const running = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Polls `done` every 20 ms for at most `ms`: a bound that proves something ends, not a speed. */
async function within (ms: number, done: () => boolean): Promise<boolean> {
  const until = Date.now() + ms
  while (!done() && Date.now() < until) await sleep(20)
  return done()
}

t.test('lock-child: says "lost" and exits once its parent is gone, not before', async (t) => {
  // `; :` keeps dash from running the child in its own place: dash forks it and waits.
  const shell = spawn('/bin/sh', ['-c', `"${process.execPath}" "${CHILD}"; :`], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  shell.stderr.pipe(process.stderr, { end: false })
  const events: string[] = []
  const lines = createInterface({ input: shell.stdout })
  const closed = once(lines, 'close')
  lines.on('line', (l) => events.push((JSON.parse(l) as { event: string }).event))
  const kids: number[] = []
  t.teardown(() => {
    // Whatever is left: the shell's group, and the child re-parented out of it.
    for (const pid of [-shell.pid!, ...kids]) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // Gone: what the test wants.
      }
    }
    lines.close()
    shell.stdout.destroy()
  })
  t.ok(await within(10_000, () => events.includes('elected')), 'the child started')
  const child = Number(readFileSync(`/proc/${shell.pid}/task/${shell.pid}/children`, 'utf8').trim().split(' ')[0])
  kids.push(child)
  t.ok(child > 0 && child !== shell.pid, 'the shell forked the child')

  // Negative control: with its parent alive, the child runs on (the watcher is no timer that ends it anyway).
  await sleep(1000)
  t.ok(running(child), 'still running while its parent lives')
  t.same(events, ['elected'])

  process.kill(shell.pid!, 'SIGKILL')
  await once(shell, 'exit')
  // The check runs every 200 ms.
  if (!await within(10_000, () => !running(child))) {
    t.fail('the orphaned child exited')
    return
  }
  await closed
  t.same(events, ['elected', 'lost'], 'it said "lost" first, so the harness counts its overlap')
})
