import { accessSync, constants } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { delimiter, join } from 'node:path'

// What ensureConsul() and ensureDockerCompose() share: finding executables, and pointing apt at a
// private folder so Debian packages are fetched without touching the system's apt configuration.

export function isExecutable (file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

export function onPath (name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    const file = join(dir, name)
    if (isExecutable(file)) return file
  }
  return undefined
}

/**
 * Prepares `work` as apt's whole world (sources, lists, cache) for `suite` of `mirror`, and returns the
 * `-o` options that make apt-get/apt-cache use it and nothing of the system's but the keyring.
 */
export async function privateApt (work: string, mirror: string, suite: string): Promise<string[]> {
  await mkdir(join(work, 'lists', 'partial'), { recursive: true })
  await mkdir(join(work, 'archives', 'partial'), { recursive: true })
  const sources = join(work, 'sources.list')
  await writeFile(sources, `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror} ${suite} main\n`)
  return [
    '-o', `Dir::Etc::SourceList=${sources}`,
    '-o', 'Dir::Etc::SourceParts=/dev/null',
    '-o', `Dir::State::Lists=${join(work, 'lists')}`,
    '-o', `Dir::Cache=${work}`,
    // Our folders are private, so the (root-only) system locks are not needed.
    '-o', 'Debug::NoLocking=1'
  ]
}
