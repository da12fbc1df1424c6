import { Type } from '@sinclair/typebox'
import t from 'tap'
import { changedPaths, pinRestartRequired, valueAt } from '../src/config/changed-paths.js'
import { deepMerge, parseProperties, parseYamlDocument } from '../src/config/formats.js'
import { keyOf, layer, type KvEntry, type LayerSettings } from '../src/config/layering.js'
import { normalizeConfigOptions } from '../src/config/options.js'
import { ConfigSchema } from '../src/config/schema-check.js'

// Pure logic of configuration from KV: formats, Spring's context layering, the KV key an error names,
// the changed paths of a reload, restart-required pinning, and the option rules.

const kv = (pairs: Record<string, string | null>): KvEntry[] => Object.entries(pairs).map(([key, value]) => ({ key, value }))
const settings = (over: Partial<LayerSettings> = {}): LayerSettings => ({ prefix: 'config', contexts: ['application', 'users'], format: 'KEY_VALUE', dataKey: 'data', ...over })

t.test('KEY_VALUE: the key path is the property path; the service context overrides application', async (t) => {
  const l = layer(kv({
    'config/application/pageSize': '20',
    'config/application/db/pool': '5',
    'config/users/pageSize': '30',
    'config/users/': null,
    'config/users/folder/': null,
    'config/other/pageSize': '99',
    'config/usersX/pageSize': '98'
  }), settings())
  t.same(l.values, { pageSize: '30', db: { pool: '5' } })
  t.equal(l.sources.get('pageSize'), 'config/users/pageSize', 'the overriding key is the source')
  t.equal(l.sources.get('db.pool'), 'config/application/db/pool')
  t.equal(l.keys, 3, 'folders and other contexts do not count')
  t.equal(layer([], settings()).keys, 0)
})

t.test('YAML and PROPERTIES: one document per context under the data key; objects merge deep', async (t) => {
  const yaml = layer(kv({
    'config/application/data': 'db:\n  pool: 5\n  url: a\nlist: [1, 2]\n',
    'config/users/data': 'db:\n  url: b\nlist: [3]\n'
  }), settings({ format: 'YAML' }))
  t.same(yaml.values, { db: { pool: 5, url: 'b' }, list: [3] }, 'deep merge, arrays replaced whole')
  t.equal(yaml.sources.get('db.pool'), 'config/application/data')
  t.equal(yaml.sources.get('db.url'), 'config/users/data')
  const props = layer(kv({ 'config/users/data': '# c\n! c\ndb.url = jdbc\\:x\npageSize: 7\nflag\nlong = a\\\n   b\n' }), settings({ format: 'PROPERTIES' }))
  t.same(props.values, { db: { url: 'jdbc:x' }, pageSize: '7', flag: '', long: 'ab' })
  t.same(parseYamlDocument(''), {}, 'an empty document is empty')
  t.throws(() => parseYamlDocument('- a\n- b'), { name: 'Error', expected: 'a YAML mapping of properties at the top level' })
  t.throws(() => layer(kv({ 'config/users/data': 'a: [' }), settings({ format: 'YAML' })), { name: 'Error', key: 'config/users/data', expected: /^a YAML document/ }, 'a parse error names the key')
  t.same(parseProperties('a.b=1\na=2'), { a: '2' }, 'last wins, even over a subtree')
  t.same(parseProperties('a.b=1\na.c=2'), { a: { b: '1', c: '2' } }, 'siblings share their parent')
  t.same(layer([{ key: 'config/users/data', value: null }], settings({ format: 'YAML' })).values, {}, 'a data key without a value is an empty document')
  t.same(deepMerge({ a: { b: 1 } }, { a: 2 }), { a: 2 })
})

t.test('FILES: config/<context>.yml|.yaml|.properties, one format per key by its extension', async (t) => {
  const l = layer(kv({
    'config/application.yml': 'pageSize: 10\ndb: { url: a }',
    'config/users.properties': 'pageSize=40',
    'config/users.yaml': 'db: { url: c }'
  }), settings({ format: 'FILES' }))
  t.same(l.values, { pageSize: '40', db: { url: 'c' } }, '.yml < .yaml < .properties within a context')
  t.equal(keyOf('pageSize', l.sources, settings({ format: 'FILES' })), 'config/users.properties')
})

t.test('keyOf: the key a value came from, a parent\'s key, or where it would be written', async (t) => {
  const sources = new Map([['db.url', 'config/users/db/url'], ['list', 'config/users/data']])
  t.equal(keyOf('db.url', sources, settings()), 'config/users/db/url')
  t.equal(keyOf('list[2]', sources, settings()), 'config/users/data', 'an array item names the key of its array')
  t.equal(keyOf('db.pool.size', sources, settings()), 'config/users/db/pool/size', 'a missing value: where it would go')
  t.equal(keyOf('pageSize', new Map(), settings({ format: 'YAML' })), 'config/users/data')
  t.equal(keyOf('pageSize', new Map(), settings({ format: 'FILES' })), 'config/users.yml')
})

t.test('schema check: strings converted, defaults filled, frozen; a problem names the KV key', async (t) => {
  const schema = new ConfigSchema(Type.Object({
    pageSize: Type.Integer({ minimum: 1, maximum: 100, default: 50, description: 'an integer from 1 to 100' }),
    db: Type.Object({ pool: Type.Integer({ default: 2 }) }, { default: {} })
  }))
  const ok = schema.check(layer(kv({ 'config/users/pageSize': '20' }), settings()), settings())
  t.same(ok, { ok: true, value: { pageSize: 20, db: { pool: 2 } } })
  t.ok(ok.ok && Object.isFrozen(ok.value) && Object.isFrozen(ok.value.db), 'frozen all the way down')
  t.same(schema.check(layer(kv({ 'config/application/pageSize': '500' }), settings()), settings()),
    { ok: false, key: 'config/application/pageSize', field: 'pageSize', expected: 'an integer from 1 to 100' })
  t.match(schema.check(layer(kv({ 'config/users/db/pool': 'many' }), settings()), settings()), { ok: false, key: 'config/users/db/pool', field: 'db.pool' })
})

t.test('changedPaths: leaf paths in the notation of errors; arrays whole', async (t) => {
  t.same(changedPaths({ a: 1, b: { c: 2, d: [1] } }, { a: 1, b: { c: 3, d: [1, 2] }, e: 'x' }), ['b.c', 'b.d', 'e'])
  t.same(changedPaths({ 'new-ui': true }, {}), ['["new-ui"]'])
  t.same(changedPaths({ a: { b: 1 } }, { a: { b: 1 } }), [], 'equal objects: nothing')
  t.same(changedPaths({ d: [1, { e: 2 }] }, { d: [1, { e: 2 }] }), [], 'equal arrays, not the same array: nothing')
  t.same(changedPaths({ a: 1, b: null, c: NaN, z: 0 }, { a: { b: 1 }, b: {}, c: NaN, z: -0 }), ['a', 'b', 'z'], 'a scalar against a tree, null against a tree, NaN against NaN, 0 against -0')
  t.same(changedPaths({ a: { b: 1 } }, { a: 5 }), ['a'])
  t.equal(valueAt({ a: { b: 2 } }, 'a.b'), 2)
  t.equal(valueAt({ a: 1 }, 'a.b'), undefined)
})

t.test('pinRestartRequired: restart-required paths keep their boot value and are reported', async (t) => {
  const boot = Object.freeze({ db: Object.freeze({ url: 'a', pool: 1 }), pageSize: 5 })
  const next = Object.freeze({ db: Object.freeze({ url: 'b', pool: 2 }), pageSize: 6, extra: Object.freeze({ x: 1 }) })
  const pinned = pinRestartRequired(next, boot, ['db.url', 'pageSize', 'extra.x', 'gone.y'])
  t.same(pinned.values, { db: { url: 'a', pool: 2 }, pageSize: 5, extra: {} }, 'boot values back; the rest is new')
  t.same(pinned.pending, ['db.url', 'pageSize', 'extra.x'])
  t.same(pinRestartRequired({ pageSize: 1 }, boot, ['db.url']).values, { pageSize: 1, db: { url: 'a' } }, 'a parent missing in the new value is recreated')
  const none = pinRestartRequired(next, next, ['db.url'])
  t.equal(none.values, next, 'nothing pending: the same object')
})

t.test('config options: defaults, and each bad field named as written with its own code', async (t) => {
  const schema = Type.Object({})
  t.same(normalizeConfigOptions({ schema }, 'users'), {
    schema,
    layers: { prefix: 'config', contexts: ['application', 'users'], format: 'KEY_VALUE', dataKey: 'data' },
    failFast: true,
    lastKnownGoodFile: undefined,
    restartRequired: [],
    watch: true,
    wait: 55_000
  }, 'Spring\'s defaults: prefix config, contexts application and the service, fail fast, wait 55 s')
  t.equal(normalizeConfigOptions({ schema, wait: '2s' }, 'users').wait, 2000)
  const bad: Array<[unknown, string]> = [
    [null, 'config'],
    [{ schema: {} }, 'config.schema'],
    [{ schema: Type.String() }, 'config.schema'],
    [{ schema, prefix: '/config' }, 'config.prefix'],
    [{ schema, contexts: [] }, 'config.contexts'],
    [{ schema, format: 'JSON' }, 'config.format'],
    [{ schema, failFast: false }, 'config.lastKnownGoodFile'],
    [{ schema, wait: '11m' }, 'config.wait'],
    [{ schema, prefx: 'x' }, 'config.prefx']
  ]
  for (const [input, field] of bad) {
    t.throws(() => normalizeConfigOptions(input, 'users'), { code: 'FST_REG_CONFIG_INVALID_OPTION', message: new RegExp(field.replace(/\./g, '\\.')) }, field)
  }
})
