// P22's clock, shared by the parent and its waiter processes. The instants are compared across
// processes, so they must come from one clock: process.hrtime is CLOCK_MONOTONIC, one per machine.
// `performance.timeOrigin + now()`, which P22 used before, is sampled per process at start-up and was off
// by up to 1.4 ms between two waiters (measured), most of the ~2 ms being measured.
export const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6
