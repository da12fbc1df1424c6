import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { installPacked } from '../src/index.js'

// A tiny package with no dependencies, so npm installs it without the registry. The plugins' own
// tarball tests (packages/*/test/package-tarball.test.ts) run the same helper against the registry.
const tiny = {
  'package.json': JSON.stringify({ name: '@fixture/tiny', version: '1.0.0', type: 'module', exports: './index.js', files: ['index.js'] }),
  'index.js': [
    'const plugin = () => {}',
    "plugin[Symbol.for('plugin-meta')] = { name: '@fixture/tiny' }",
    'export default plugin',
    'export { plugin }',
    "export const version = '1.0.0'",
    ''
  ].join('\n'),
  'not-shipped.txt': 'left out by `files`'
}

t.test('packs, installs with npm outside the workspace, and reports the ESM and CommonJS shapes', async (t) => {
  const dir = t.testdir({ tiny, other: { 'package.json': JSON.stringify({ name: 'other', version: '2.0.0', main: 'index.js' }), 'index.js': 'module.exports = 2\n' } })
  const installed = await installPacked([join(dir, 'tiny'), join(dir, 'other')])
  t.teardown(() => installed.remove())
  t.same(installed.names, ['@fixture/tiny', 'other'])
  t.equal(installed.root('@fixture/tiny'), join(installed.dir, 'node_modules', '@fixture', 'tiny'))
  t.same((await readdir(installed.root('@fixture/tiny'))).sort(), ['index.js', 'package.json'], 'what the tarball holds, nothing else')
  t.ok(existsSync(join(installed.root('other'), 'index.js')), 'every tarball is installed')
  t.same(await installed.moduleShape('@fixture/tiny'), {
    imported: { default: 'plugin @fixture/tiny', plugin: 'plugin @fixture/tiny', version: 'string' },
    required: { __esModule: 'boolean', default: 'plugin @fixture/tiny', plugin: 'plugin @fixture/tiny', version: 'string' },
    identical: true
  })
  t.equal(await installed.node('hello.mjs', "import { version } from '@fixture/tiny'; console.log(version)"), '1.0.0\n')
  await installed.remove()
  t.notOk(existsSync(installed.dir))
})

t.test('a package that cannot be packed rejects and leaves no temp folder behind', async (t) => {
  const tmp = t.testdir()
  const before = process.env.TMPDIR
  process.env.TMPDIR = tmp
  t.teardown(() => { if (before === undefined) delete process.env.TMPDIR; else process.env.TMPDIR = before })
  await t.rejects(installPacked([join(tmp, 'missing')], { env: process.env }))
  t.same(await readdir(tmp), [])
})
