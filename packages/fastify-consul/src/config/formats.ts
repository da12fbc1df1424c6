import { parse as parseYaml } from 'yaml'

// Spring Cloud Consul's formats, each a pure parser from one KV value to a tree. KEY_VALUE has no
// document: the key path itself is the property path (see layering.ts).

export type ConfigFormat = 'KEY_VALUE' | 'YAML' | 'PROPERTIES' | 'FILES'
export const CONFIG_FORMATS: readonly ConfigFormat[] = ['KEY_VALUE', 'YAML', 'PROPERTIES', 'FILES']

export type Tree = Record<string, unknown>

/** A value that does not parse; `expected` completes "expected …" in FST_REG_CONFIG_INVALID. */
export class DocumentError extends Error {
  constructor (readonly expected: string) {
    super(expected)
  }
}

function isTree (value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** A YAML mapping; an empty document is an empty tree (a key created with `consul kv put k ""`). */
export function parseYamlDocument (text: string): Tree {
  let doc: unknown
  try {
    doc = parseYaml(text)
  } catch (err) {
    throw new DocumentError(`a YAML document (${(err as Error).message.split('\n')[0]})`)
  }
  if (doc === null || doc === undefined) return {}
  if (!isTree(doc)) throw new DocumentError('a YAML mapping of properties at the top level')
  return doc
}

/**
 * java.util.Properties' common subset: `a.b=c`, `a.b: c` or `a.b c`; `#` and `!` comments; a trailing
 * backslash continues the line. Dots nest, as Spring's relaxed binding reads them. Values stay strings:
 * the schema converts them, as it does KEY_VALUE's.
 */
export function parseProperties (text: string): Tree {
  const tree: Tree = {}
  const lines = text.replace(/\\\r?\n[ \t\f]*/g, '').split(/\r?\n/)
  for (const raw of lines) {
    const line = raw.replace(/^[ \t\f]+/, '')
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue
    const match = /^((?:\\.|[^=:\s\\])+)[ \t\f]*[=:]?[ \t\f]*(.*)$/.exec(line)!
    const key = match[1]!.replace(/\\(.)/g, '$1')
    setIn(tree, key.split('.'), match[2]!.replace(/\\(.)/g, '$1'))
  }
  return tree
}

/** Sets `value` at `path`, creating objects on the way; a scalar in the way is replaced (last wins). */
export function setIn (tree: Tree, path: readonly string[], value: unknown): void {
  let node = tree
  for (const segment of path.slice(0, -1)) {
    const next = node[segment]
    node = node[segment] = isTree(next) ? next : {}
  }
  node[path[path.length - 1]!] = value
}

/** `b` over `a`: objects merge key by key, anything else (arrays included) is replaced whole. */
export function deepMerge (a: Tree, b: Tree): Tree {
  const out: Tree = { ...a }
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k]
    out[k] = isTree(prev) && isTree(v) ? deepMerge(prev, v) : v
  }
  return out
}

export { isTree }
