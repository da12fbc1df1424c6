import { isDeepStrictEqual } from 'node:util'
import { fieldOf } from '../util/validate.js'
import { isTree } from './formats.js'

// What a reload changed, as the leaf paths an app can switch on (`db.pool.size`, `features["new-ui"]`):
// objects are compared key by key, anything else (arrays included) as a whole.

export function changedPaths (before: unknown, after: unknown, field = ''): string[] {
  // This runs on every reload, before 'change' is emitted (P22 times it): scalars, most of any
  // configuration, are compared directly rather than through node:util's deep comparison.
  if (Object.is(before, after)) return []
  if (isTree(before) && isTree(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()
    return keys.flatMap((k) => changedPaths(before[k], after[k], fieldOf(field, k)))
  }
  if (typeof before !== 'object' || typeof after !== 'object' || before === null || after === null) return [field]
  return isDeepStrictEqual(before, after) ? [] : [field]
}

/** The value at a dotted path (`db.url`), or undefined. */
export function valueAt (tree: unknown, path: string): unknown {
  let node = tree
  for (const segment of path.split('.')) node = isTree(node) ? node[segment] : undefined
  return node
}

/**
 * `next` with every restart-required path set back to its value in `boot`, and the paths whose new
 * value therefore waits for a restart. The process keeps running on one consistent object: the boot
 * value of those paths and the new value of every other one.
 */
export function pinRestartRequired (next: Record<string, unknown>, boot: Record<string, unknown>, paths: readonly string[]): { values: Record<string, unknown>, pending: string[] } {
  const pending = paths.filter((p) => !isDeepStrictEqual(valueAt(next, p), valueAt(boot, p)))
  if (pending.length === 0) return { values: next, pending }
  const values = structuredClone(next)
  for (const path of pending) {
    const segments = path.split('.')
    let node: Record<string, unknown> = values
    for (const segment of segments.slice(0, -1)) {
      if (!isTree(node[segment])) node[segment] = {}
      node = node[segment] as Record<string, unknown>
    }
    const last = segments[segments.length - 1]!
    const was = valueAt(boot, path)
    if (was === undefined) delete node[last]
    else node[last] = structuredClone(was)
  }
  return { values, pending }
}
