import { fieldOf } from '../util/validate.js'
import { deepMerge, DocumentError, isTree, parseProperties, parseYamlDocument, setIn, type ConfigFormat, type Tree } from './formats.js'

// Spring Cloud Consul's context layering as one pure function: the keys under `prefix` become one tree,
// later contexts overriding earlier ones (`config/application/…` < `config/<service>/…`), and every leaf
// remembers the KV key it came from, so an error can name the key as the operator wrote it.

export interface KvEntry {
  /** The key as stored, e.g. `config/user-service/pageSize`. */
  key: string
  /** The decoded value; null for a key with no value (a "folder" made by the UI). */
  value: string | null
}

export interface LayerSettings {
  prefix: string
  /** Lowest precedence first. */
  contexts: readonly string[]
  format: ConfigFormat
  /** The key that holds the document for YAML and PROPERTIES (Spring's `data-key`). */
  dataKey: string
}

export interface Layered {
  values: Tree
  /** Leaf field (fieldOf notation) → the KV key it came from. */
  sources: ReadonlyMap<string, string>
  /** How many keys contributed: zero means the prefix is empty. */
  keys: number
}

export class LayerError extends Error {
  constructor (readonly key: string, readonly expected: string) {
    super(`${key}: ${expected}`)
  }
}

const FILE_EXTENSIONS = ['.yml', '.yaml', '.properties'] as const

function parseDocument (entry: KvEntry, kind: 'YAML' | 'PROPERTIES'): Tree {
  try {
    const text = entry.value ?? ''
    return kind === 'YAML' ? parseYamlDocument(text) : parseProperties(text)
  } catch (err) {
    throw new LayerError(entry.key, (err as DocumentError).expected)
  }
}

/** The trees of one context, each with the key it came from. */
function contextTrees (byKey: ReadonlyMap<string, KvEntry>, entries: readonly KvEntry[], s: LayerSettings, context: string): Array<{ key: string, tree: Tree }> {
  const base = `${s.prefix}/${context}`
  if (s.format === 'KEY_VALUE') {
    const out: Array<{ key: string, tree: Tree }> = []
    for (const entry of entries) {
      if (!entry.key.startsWith(`${base}/`) || entry.key.endsWith('/') || entry.value === null) continue
      const tree: Tree = {}
      setIn(tree, entry.key.slice(base.length + 1).split('/'), entry.value)
      out.push({ key: entry.key, tree })
    }
    return out
  }
  if (s.format === 'FILES') {
    // One format per key, told by its extension: config/application.yml, config/user-service.properties.
    return FILE_EXTENSIONS.flatMap((ext) => {
      const entry = byKey.get(`${base}${ext}`)
      return entry === undefined ? [] : [{ key: entry.key, tree: parseDocument(entry, ext === '.properties' ? 'PROPERTIES' : 'YAML') }]
    })
  }
  const entry = byKey.get(`${base}/${s.dataKey}`)
  return entry === undefined ? [] : [{ key: entry.key, tree: parseDocument(entry, s.format) }]
}

function recordSources (sources: Map<string, string>, tree: unknown, field: string, key: string): void {
  if (isTree(tree) && Object.keys(tree).length > 0) {
    for (const [k, v] of Object.entries(tree)) recordSources(sources, v, fieldOf(field, k), key)
  } else {
    sources.set(field, key)
  }
}

/** Throws LayerError naming the key of a document that does not parse. */
export function layer (entries: readonly KvEntry[], s: LayerSettings): Layered {
  const byKey = new Map(entries.map((e) => [e.key, e]))
  let values: Tree = {}
  const sources = new Map<string, string>()
  let keys = 0
  for (const context of s.contexts) {
    for (const { key, tree } of contextTrees(byKey, entries, s, context)) {
      values = deepMerge(values, tree)
      recordSources(sources, tree, '', key)
      keys++
    }
  }
  return { values, sources, keys }
}

/**
 * The KV key to name for a field: the key it came from (or the key of its nearest parent's value), else
 * where the operator would write it, in the most specific context.
 */
export function keyOf (field: string, sources: ReadonlyMap<string, string>, s: LayerSettings): string {
  for (let f = field; f !== ''; f = f.replace(/(\.[^.[]*|\[[^\]]*\])$|^[^.[]*$/, '')) {
    const key = sources.get(f)
    if (key !== undefined) return key
  }
  const context = `${s.prefix}/${s.contexts[s.contexts.length - 1]!}`
  if (s.format === 'KEY_VALUE') return `${context}/${field.replace(/\./g, '/')}`
  if (s.format === 'FILES') return `${context}.yml`
  return `${context}/${s.dataKey}`
}
