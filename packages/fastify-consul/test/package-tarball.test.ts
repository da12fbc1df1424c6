import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { installPacked } from '@reg/testkit'
import t from 'tap'

// What users get from the registry: the tarballs `pnpm publish` would upload for both plugins, installed
// together with plain npm into a fresh folder outside the workspace (as the README's usage composes
// them), then loaded from ESM and from CommonJS (require(esm), Node ≥ 20.19). This suite also runs on
// Node 22 and 24 in CI, so each line proves the same.

const plugins = ['fastify-consul', 'fastify-health'].map((name) => fileURLToPath(new URL(`../../${name}`, import.meta.url)))

t.test('the packed tarballs install with npm and work from ESM and from require()', async (t) => {
  const installed = await installPacked(plugins)
  t.teardown(() => installed.remove())
  t.same(installed.names, ['@reg/fastify-consul', '@reg/fastify-health'])

  for (const name of installed.names) {
    const root = installed.root(name)
    t.notMatch(await readFile(join(root, 'package.json'), 'utf8'), /catalog:|workspace:/, `${name}: pnpm pack rewrote the workspace specifiers`)
    t.ok(existsSync(join(root, 'LICENSE')), `${name}: the LICENSE ships`)
    t.ok(existsSync(join(root, 'dist', 'index.d.ts')), `${name}: the types ship`)

    // What npm installs for users: nothing private. devDependencies ship in the manifest (pnpm keeps them,
    // as npm does) but are never installed by a consumer, so the private testkit may stay there only.
    const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as Record<string, Record<string, string> | string | undefined>
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
      t.notOk(Object.keys((manifest[field] ?? {}) as Record<string, string>).some((dep) => dep.startsWith('@reg/')), `${name}: no workspace package in ${field}`)
    }

    const own = JSON.parse(await readFile(join(plugins[installed.names.indexOf(name)]!, 'package.json'), 'utf8')) as { version: string }
    t.equal(manifest.version, own.version, `${name}: the version changesets cut`)
    t.not(manifest.version, '0.0.0', `${name}: a released version, not the placeholder`)

    // Every source map points at a file that ships, so a stack trace or a debugger lands in real TypeScript.
    const maps = (await readdir(join(root, 'dist'), { recursive: true })).filter((f) => f.endsWith('.js.map'))
    t.ok(maps.length > 0, `${name}: source maps ship`)
    const missing: string[] = []
    for (const map of maps) {
      const { sources } = JSON.parse(await readFile(join(root, 'dist', map), 'utf8')) as { sources: string[] }
      for (const source of sources) if (!existsSync(resolve(root, 'dist', dirname(map), source))) missing.push(`${map} → ${source}`)
    }
    t.same(missing, [], `${name}: every map's sources ship`)

    // CommonJS sees the same exports, the very same values, plus the `__esModule` marker Node adds so that
    // CommonJS code transpiled from `import plugin from` gets the default export.
    const shape = await installed.moduleShape(name)
    t.equal(shape.imported.default, `plugin ${name}`, `${name}: the default export is the plugin`)
    t.same(shape.required, { ...shape.imported, __esModule: 'boolean' }, `${name}: require() sees what import() sees`)
    t.ok(shape.identical, `${name}: the very same values`)
  }

  // ESM, as the README shows it, on a real Fastify (npm installed the peer). `ready()` without `listen()`
  // registers nothing, so no Consul agent is needed to prove every dependency loads and works.
  const esm = JSON.parse(await installed.node('esm.mjs', `
    import Fastify from 'fastify'
    import consulPlugin, { consulPlugin as named, errors } from '@reg/fastify-consul'
    import healthPlugin, { healthPlugin as namedHealth, DuplicateCheckError } from '@reg/fastify-health'
    const app = Fastify()
    await app.register(healthPlugin, { checks: { ok: () => true } })
    await app.register(consulPlugin, { service: { name: 'packed' } })
    const health = await app.inject('/health')
    const state = app.consul.state
    await app.close()
    console.log(JSON.stringify({
      named: named === consulPlugin && namedHealth === healthPlugin,
      health: health.statusCode,
      state,
      codes: [new errors.NoInstanceError('x').code, new DuplicateCheckError('x').code]
    }))
  `))
  t.same(esm, { named: true, health: 200, state: 'unregistered', codes: ['FST_REG_DISCOVERY_NO_INSTANCE', 'FST_REG_HEALTH_DUPLICATE_CHECK'] })
})
