import type { Instance } from '../watch/instance.js'
import type { Balancer, BalancerName, BalancerOptions } from './balancer.js'
import { LeastRequest } from './least-request.js'
import { RandomPick } from './random.js'
import { RoundRobin } from './round-robin.js'
import { weighted } from './weighted.js'

/**
 * A balancer over one snapshot. Instances with weight 0 (critical, or warning with `Weights.Warning`
 * 0) are never picked, whatever the algorithm: Consul's DNS interface leaves them out too.
 */
export function createBalancer (name: BalancerName, instances: readonly Instance[], opts: BalancerOptions = {}): Balancer {
  const random = opts.random ?? Math.random
  const list = instances.every((i) => i.weight > 0) ? instances : instances.filter((i) => i.weight > 0)
  switch (name) {
    case 'random': return new RandomPick(list, random)
    case 'weighted': return weighted(list, random)
    case 'least-request': return new LeastRequest(list, random, opts.load, opts.now ?? (() => performance.now()))
    default: return new RoundRobin(list, random)
  }
}
