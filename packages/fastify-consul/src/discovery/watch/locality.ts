import type { Instance } from './instance.js'

/** Where the caller is: its zone, and the meta key that holds an instance's zone. */
export interface Locality {
  readonly zone: string
  /** Read from the service's meta first, then its node's meta. Default 'zone'. */
  readonly key: string
}

/** An instance's zone: its service meta, else its node meta (a zone is often a property of the machine). */
export function zoneOf (instance: Instance, key: string): string | undefined {
  return instance.meta[key] ?? instance.nodeMeta[key]
}

/**
 * A datacenter's instances as two priority levels: the caller's zone, then every other zone (including
 * instances with no zone at all). routing.ts spills from the first to the second in proportion to the
 * local zone's health, Envoy's priority rule. We chose priorities over Envoy's zone-aware percentages
 * because those need the callers' own spread over zones, which one caller does not know.
 */
export function zoneLevels (all: readonly Instance[], locality: Locality | undefined): Array<readonly Instance[]> {
  if (locality === undefined) return [all]
  const local: Instance[] = []
  const other: Instance[] = []
  for (const i of all) (zoneOf(i, locality.key) === locality.zone ? local : other).push(i)
  return [local, other]
}
