import { exitWhenOrphaned } from './exit-when-orphaned.js'
import { monotonicMs } from './kv-clock.js'

// R19's peer child: the command `consul lock <prefix> exec node lock-child.js` runs while it holds the
// lock, as its users run a job under it. It runs only while the lock is held, so its start is "elected";
// it reports "lost" when `consul lock` sends it SIGTERM (on its own SIGTERM, or a lost lock), then exits.
// Same lines and clock as leader-contender.ts. The interval stays open until then (the timer).
const say = (event: string): void => { process.stdout.write(JSON.stringify({ event, at: monotonicMs() }) + '\n') }
const lost = (): never => {
  say('lost')
  clearInterval(alive)
  process.exit(0)
}
say('elected')
const alive = setInterval(() => {}, 60_000)
process.on('SIGTERM', lost)
// `consul lock` gone without stopping us (its own kill -9 reaches us only through the process group): we
// hold no lock any more. Saying "lost" only now lets the harness count the overlap, as it was.
exitWhenOrphaned(lost)
