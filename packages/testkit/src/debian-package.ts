import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { debianMirror } from './ensure-consul.js'
import { onPath, privateApt } from './private-apt.js'

const run = promisify(execFile)

export interface DebianPackageFetch {
  /** The Debian package to download, e.g. `victoria-metrics`. */
  name: string
  suite: string
  /** The unpacked tree lands in `<cacheDir>/root`. */
  cacheDir: string
  /** Folder holding the system's apt sources, read to reuse its Debian mirror. */
  aptDir: string
  env: NodeJS.ProcessEnv
  log: (line: string) => void
}

/**
 * Downloads one Debian package with apt pointed at private folders (the system's apt configuration is
 * only read, for its mirror) and unpacks it with `dpkg-deb -x` into `<cacheDir>/root`, published with
 * one rename so concurrent callers never see half a tree. Throws a plain Error saying what is missing or
 * what apt said; callers wrap it in their own coded error with their own help.
 */
export async function fetchDebianPackage (p: DebianPackageFetch): Promise<void> {
  const aptGet = onPath('apt-get', p.env)
  const dpkgDeb = onPath('dpkg-deb', p.env)
  if (!aptGet || !dpkgDeb) throw new Error('this machine has no apt-get/dpkg-deb to fetch Debian\'s package')
  const mirror = debianMirror(p.aptDir)
  if (!mirror) throw new Error(`no Debian mirror is named in ${p.aptDir} to fetch it from`)
  p.log(`fetching ${p.name} from Debian ${p.suite} via ${mirror} into ${p.cacheDir}`)
  await mkdir(p.cacheDir, { recursive: true })
  const work = await mkdtemp(join(p.cacheDir, 'fetch-'))
  const big = { env: p.env, maxBuffer: 16 * 1024 * 1024 }
  try {
    const o = await privateApt(work, mirror, p.suite)
    await run(aptGet, [...o, 'update'], big)
    await run(aptGet, [...o, 'download', p.name], { ...big, cwd: work })
    const deb = (await readdir(work)).find((f) => f.startsWith(`${p.name}_`) && f.endsWith('.deb'))
    if (!deb) throw new Error(`apt-get download ${p.name} exited 0 but produced no .deb`)
    await run(dpkgDeb, ['-x', join(work, deb), join(work, 'root')], { env: p.env })
    await rm(join(p.cacheDir, 'root'), { recursive: true, force: true })
    await rename(join(work, 'root'), join(p.cacheDir, 'root'))
  } catch (err) {
    // execFile's message carries the command's stderr.
    throw new Error(`fetching Debian's ${p.name} package failed: ${(err as Error).message.trim()}`)
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}
