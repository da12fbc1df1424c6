import { Kind, Type, type TObject } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { Duration, toMs } from '../consul/duration.js'
import { ConfigInvalidOptionError } from '../errors.js'
import { fieldOf, firstProblem } from '../util/validate.js'
import { CONFIG_FORMATS, type ConfigFormat } from './formats.js'
import type { LayerSettings } from './layering.js'

// The `config` option: its schema, and the one place its defaults live (Spring Cloud Consul's, except
// where a comment says why not).

const KvPath = Type.String({ pattern: '^[^/](?:.*[^/])?$', description: 'a KV path without a leading or trailing "/"' })

const Schema = Type.Object({
  // A TypeBox schema is an object graph with symbols: checked by shape below, not walked here.
  schema: Type.Unknown(),
  prefix: Type.Optional(KvPath),
  contexts: Type.Optional(Type.Array(Type.String({ minLength: 1, pattern: '^[^/]+$', description: 'a context name without "/"' }), { minItems: 1, description: 'a non-empty array of context names, lowest precedence first' })),
  format: Type.Optional(Type.Union(CONFIG_FORMATS.map((f) => Type.Literal(f)), { description: `one of ${CONFIG_FORMATS.join(', ')}` })),
  dataKey: Type.Optional(Type.String({ minLength: 1, pattern: '^[^/]+$', description: 'a key name without "/"' })),
  failFast: Type.Optional(Type.Boolean({ description: 'a boolean' })),
  lastKnownGoodFile: Type.Optional(Type.String({ minLength: 1, description: 'a file path' })),
  restartRequired: Type.Optional(Type.Array(Type.String({ minLength: 1, description: 'a dotted property path, e.g. "db.url"' }), { description: 'an array of dotted property paths' })),
  watch: Type.Optional(Type.Boolean({ description: 'a boolean' })),
  wait: Type.Optional(Duration(1000, 600_000))
}, { additionalProperties: false, description: 'an object { schema, prefix?, contexts?, format?, dataKey?, failFast?, lastKnownGoodFile?, restartRequired?, watch?, wait? }' })

const compiled = TypeCompiler.Compile(Schema)

export interface ConfigOptions {
  /** A TypeBox `Type.Object(…)`: what the configuration must be, with its defaults. */
  schema: TObject
  /** Default `config`. */
  prefix?: string
  /** Lowest precedence first. Default `['application', <service.name>]`. */
  contexts?: string[]
  /** Default `KEY_VALUE`. */
  format?: ConfigFormat
  /** The key holding the document for YAML and PROPERTIES. Default `data`. */
  dataKey?: string
  /** Boot only from Consul (true), or from the last-known-good file when Consul cannot be read (false). Default true. */
  failFast?: boolean
  /** Where the last good configuration is written after each good load; required with `failFast: false`. */
  lastKnownGoodFile?: string
  /** Dotted paths whose changes wait for a restart: reported, never applied. Default none. */
  restartRequired?: string[]
  /** Follow changes with a blocking query. Default true. */
  watch?: boolean
  /** Blocking-query wait: ms or a duration. Default 55s (Spring's). */
  wait?: number | string
}

export interface ConfigSettings {
  schema: TObject
  layers: LayerSettings
  failFast: boolean
  lastKnownGoodFile: string | undefined
  restartRequired: readonly string[]
  watch: boolean
  /** ms */
  wait: number
}

export const CONFIG_DEFAULTS = Object.freeze({
  prefix: 'config',
  format: 'KEY_VALUE' as ConfigFormat,
  dataKey: 'data',
  failFast: true,
  watch: true,
  wait: 55_000
})

function isObjectSchema (value: unknown): value is TObject {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[Kind] === 'Object'
}

/** `field` names the option as the user wrote it under `prefix` (the plugin's `config`). */
export function normalizeConfigOptions (input: unknown, serviceName: string, prefix = 'config'): ConfigSettings {
  const fail = (field: string, expected: string): never => { throw new ConfigInvalidOptionError(fieldOf(prefix, field), expected) }
  if (typeof input !== 'object' || input === null) fail('', 'an object { schema, … }')
  const problem = firstProblem(compiled, input, prefix)
  if (problem !== undefined) throw new ConfigInvalidOptionError(problem.field, problem.expected)
  const opts = input as ConfigOptions
  if (!isObjectSchema(opts.schema)) fail('schema', 'a TypeBox object schema, Type.Object({ … })')
  const failFast = opts.failFast ?? CONFIG_DEFAULTS.failFast
  if (!failFast && opts.lastKnownGoodFile === undefined) fail('lastKnownGoodFile', 'a file path: failFast false boots from it when Consul cannot be read')
  return {
    schema: opts.schema,
    layers: {
      prefix: opts.prefix ?? CONFIG_DEFAULTS.prefix,
      contexts: opts.contexts ?? ['application', serviceName],
      format: opts.format ?? CONFIG_DEFAULTS.format,
      dataKey: opts.dataKey ?? CONFIG_DEFAULTS.dataKey
    },
    failFast,
    lastKnownGoodFile: opts.lastKnownGoodFile,
    restartRequired: opts.restartRequired ?? [],
    watch: opts.watch ?? CONFIG_DEFAULTS.watch,
    wait: opts.wait === undefined ? CONFIG_DEFAULTS.wait : toMs(opts.wait)!
  }
}
