import { createHash } from 'node:crypto'
import type { Instance } from './instance.js'

/** Everything about an instance that changes how it is picked or reached, in a fixed order. */
function canonical (i: Instance): string {
  const meta = Object.keys(i.meta).sort().map((k) => [k, i.meta[k]])
  const nodeMeta = Object.keys(i.nodeMeta).sort().map((k) => [k, i.nodeMeta[k]])
  return JSON.stringify([i.datacenter, i.node, i.id, i.service, i.address, i.port, i.weight, i.status, i.maintenance, i.tags, meta, nodeMeta])
}

function byNodeThenId (a: Instance, b: Instance): number {
  if (a.datacenter !== b.datacenter) return a.datacenter < b.datacenter ? -1 : 1
  if (a.node !== b.node) return a.node < b.node ? -1 : 1
  /* c8 ignore next -- Consul never returns one service ID twice on a node; the tie is for totality */
  if (a.id === b.id) return 0
  return a.id < b.id ? -1 : 1
}

/**
 * An immutable snapshot of a service's instances, sorted by datacenter, node then ID, with a content hash. Two
 * answers from Consul that differ only in order or in fields we ignore (indexes, check output) hash
 * the same, which is how watchers emit `change` only when something that matters changed.
 */
export class InstanceSet {
  static readonly EMPTY = new InstanceSet([])

  readonly instances: readonly Instance[]
  /** sha256 of the canonical form: equal hashes mean equal sets. */
  readonly hash: string

  private constructor (sorted: Instance[]) {
    this.instances = Object.freeze(sorted)
    const h = createHash('sha256')
    for (const i of sorted) h.update(canonical(i)).update('\n')
    this.hash = h.digest('base64url')
  }

  static from (instances: Iterable<Instance>): InstanceSet {
    const sorted = [...instances].sort(byNodeThenId)
    return sorted.length === 0 ? InstanceSet.EMPTY : new InstanceSet(sorted)
  }

  get size (): number {
    return this.instances.length
  }

  equals (other: InstanceSet): boolean {
    return this === other || this.hash === other.hash
  }
}
