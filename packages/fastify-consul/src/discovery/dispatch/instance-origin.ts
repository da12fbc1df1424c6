import { httpOrigin, urlHost } from '../../consul/address.js'
import type { Instance } from '../watch/instance.js'

// Instances are immutable and replaced whole when Consul changes them, so an origin computed once per
// object holds for its life; the map is weak, so instances that left the set take their entry with them.
const origins = new WeakMap<Instance, string>()

/**
 * The instance's origin (`https:` for a Connect-native instance, which serves only mutual TLS), the key of its pool, its live load and its outlier record. Parsing left
 * out instances without a dialable address; one built by hand that has none still gets a string, and
 * its pool fails to build: a failed attempt, not a crash (RetryingHandler#send).
 */
export function originOf (instance: Instance): string {
  let origin = origins.get(instance)
  if (origin === undefined) {
    const dialable = httpOrigin(instance.address, instance.port)
    origin = 'origin' in dialable ? dialable.origin : `http://${urlHost(instance.address)}:${instance.port}`
    // Its own origin, so a re-registration that turns Connect on or off gets a new pool and record.
    if (instance.connect === 'native') origin = `https${origin.slice('http'.length)}`
    origins.set(instance, origin)
  }
  return origin
}
