// R19's contenders run in process groups of their own, so the harness can kill -9 a whole group; a
// detached process outlives its parent, and one left behind holds the pipes of the run that started it
// (a CI run waited 90 minutes on one). Node cannot ask the kernel for PDEATHSIG, so each contender
// watches its parent id instead: once its parent is gone (it is re-parented), it runs `onOrphaned`.
// For `consul lock`'s child, the parent is `consul lock`: a child left running after the lock's holder
// died is a job without a lock, and it ends here, after saying so.

/** Calls `onOrphaned` once, within `everyMs`, after this process's parent has exited. The check never keeps the process alive. */
export function exitWhenOrphaned (onOrphaned: () => void, everyMs = 200): void {
  const parent = process.ppid
  const timer = setInterval(() => {
    if (process.ppid === parent) return
    clearInterval(timer)
    onOrphaned()
  }, everyMs)
  timer.unref()
}
