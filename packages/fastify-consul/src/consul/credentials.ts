import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { createSecureContext } from 'node:tls'
import type { ResolvedConnection } from './connection.js'
import { InvalidOptionError, TokenFileError } from '../errors.js'

/** What the transport sends with: the token and the TLS material, read from the files as they are now. */
export interface Credentials {
  token: string | undefined
  ca: string[] | undefined
  cert: string | undefined
  key: string | undefined
  /** When the client certificate stops being valid, for telling "expired" from "rejected". */
  certNotAfter: Date | undefined
  /** Bumped on every reload that changed something: the transport rebuilds its TLS agent on a new one. */
  version: number
}

export interface CredentialFilesOptions {
  /** Least time between two looks at the files' modification times, in ms. Default 2000. */
  recheckMs?: number
  now?: () => number
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----/

/**
 * The token file, the CA file or folder and the client certificate and key, as Vault agent or
 * consul-template rotate them: read once at startup (where a bad file is a coded error naming its
 * variable), then looked at again at most every `recheckMs` (or at once after invalidate(), which the
 * transport calls on a TLS failure) and re-read when a modification time, size or inode changed. A
 * reload that fails (a half-written rotation, a key that does not match its certificate yet) keeps the
 * last good material and is tried again at the next look.
 */
export class CredentialFiles {
  readonly #conn: ResolvedConnection
  readonly #recheckMs: number
  readonly #now: () => number
  #current: Credentials
  #stamp: string
  #checkedAt: number

  constructor (conn: ResolvedConnection, opts: CredentialFilesOptions = {}) {
    this.#conn = conn
    this.#recheckMs = opts.recheckMs ?? 2000
    this.#now = opts.now ?? Date.now
    this.#stamp = this.#stampNow()
    this.#current = { ...this.#read(), version: 0 }
    this.#checkedAt = this.#now()
  }

  get current (): Credentials {
    return this.#current
  }

  /** Whether anything is read from a file (so refresh() has something to look at). */
  get watched (): boolean {
    return this.#files().length > 0
  }

  /** The next refresh() looks at the files whatever the time: after a TLS failure, say. */
  invalidate (): void {
    this.#checkedAt = -Infinity
  }

  /** The credentials to send with now, re-read first when a look is due and a file changed. */
  refresh (): Credentials {
    if (this.#now() - this.#checkedAt < this.#recheckMs) return this.#current
    this.#checkedAt = this.#now()
    const stamp = this.#stampNow()
    if (stamp === this.#stamp) return this.#current
    try {
      this.#current = { ...this.#read(), version: this.#current.version + 1 }
      this.#stamp = stamp
    } catch {
      // Mid-rotation: keep what worked; the stamp stays old, so the next look tries again.
    }
    return this.#current
  }

  #files (): string[] {
    const c = this.#conn
    return [c.tokenFile, c.caFile, c.caPath, c.certFile, c.keyFile].filter((f): f is string => f !== undefined)
  }

  /** One string that changes when any watched file does; cheap: stat calls only. */
  #stampNow (): string {
    const parts: string[] = []
    const stamp = (path: string): void => {
      try {
        const s = statSync(path)
        parts.push(`${path}:${s.ino}:${s.size}:${s.mtimeMs}`)
        if (s.isDirectory()) for (const name of readdirSync(path).sort()) stamp(join(path, name))
      } catch {
        parts.push(`${path}:missing`)
      }
    }
    for (const file of this.#files()) stamp(file)
    return parts.join('|')
  }

  #read (): Omit<Credentials, 'version'> {
    const c = this.#conn
    let token = c.token
    if (token === undefined && c.tokenFile !== undefined) {
      try {
        token = readFileSync(c.tokenFile, 'utf8').trim() || undefined
      } catch (err) {
        throw new TokenFileError(c.tokenFile, String((err as NodeJS.ErrnoException).code))
      }
    }
    if (!c.secure) return { token, ca: undefined, cert: undefined, key: undefined, certNotAfter: undefined }

    // The CLI's order: inline PEM, then CONSUL_CACERT, then CONSUL_CAPATH.
    let ca: string[] | undefined
    if (c.ca !== undefined) ca = [c.ca]
    else if (c.caFile !== undefined) ca = [pem(c.caFile, c.names.ca)]
    else if (c.caPath !== undefined) ca = caFolder(c.caPath, c.names.ca)
    // OpenSSL skips what is not PEM without a word; a CA file with no certificate in it is a mistake.
    if (ca !== undefined) {
      check(c.names.ca, 'PEM CA certificates', () => {
        if (!ca.every((text) => PEM_CERT.test(text))) throw new Error('no PEM certificate found')
        return createSecureContext({ ca })
      })
    }

    let cert: string | undefined
    let key: string | undefined
    let certNotAfter: Date | undefined
    if (c.certFile !== undefined && c.keyFile !== undefined) {
      cert = pem(c.certFile, c.names.cert)
      key = pem(c.keyFile, c.names.key)
      certNotAfter = check(c.names.cert, 'a PEM certificate', () => new Date(new X509Certificate(cert!).validTo))
      check(c.names.key, 'a PEM private key', () => createPrivateKey(key!))
      check(c.names.key, `the private key of ${c.names.cert}`, () => createSecureContext({ cert, key }))
    }
    return { token, ca, cert, key, certNotAfter }
  }
}

function check<T> (name: string, expected: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    throw new InvalidOptionError(name, `${expected} (${(err as Error).message})`)
  }
}

function pem (path: string, name: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new InvalidOptionError(name, `a readable PEM file, but ${path} gave ${(err as NodeJS.ErrnoException).code}`)
  }
}

/** Every file in the folder that holds a PEM certificate, as Consul's rootcerts.LoadCAPath reads it. */
function caFolder (dir: string, name: string): string[] {
  let entries: string[]
  try {
    entries = readdirSync(dir).sort()
  } catch (err) {
    throw new InvalidOptionError(name, `a readable folder of PEM files, but ${dir} gave ${(err as NodeJS.ErrnoException).code}`)
  }
  const certs = entries
    .map((entry) => join(dir, entry))
    .filter((path) => statSync(path, { throwIfNoEntry: false })?.isFile() === true)
    .map((path) => readFileSync(path, 'utf8'))
    .filter((text) => PEM_CERT.test(text))
  if (certs.length === 0) throw new InvalidOptionError(name, `a folder with at least one PEM certificate, but ${dir} has none`)
  return certs
}
