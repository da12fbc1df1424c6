import consulPlugin from '@reg/fastify-consul'
import Fastify from 'fastify'
import { exitWhenOrphaned } from './exit-when-orphaned.js'
import { monotonicMs } from './kv-clock.js'

// R19's contender (ours): one app with the plugin, contending for LEADER_KEY through its public
// `fastify.consul.leader()`, in a process of its own so the harness can kill -9 it. It prints one JSON
// line per event on stdout, with the instant on the machine's monotonic clock (kv-clock.ts), the same
// lines as lock-child.ts prints for the peer: { event: 'elected' | 'lost', at }.
const say = (event: string): void => { process.stdout.write(JSON.stringify({ event, at: monotonicMs() }) + '\n') }

const app = Fastify({ logger: false })
await app.register(consulPlugin, {
  service: { name: 'r19' },
  register: false,
  consul: { address: process.env.CONSUL_HTTP_ADDR! }
})
// Listening, as a service does: the election's own timers are unref'd and never keep a process alive
// (a follower pausing between two tries would exit).
await app.listen({ port: 0, host: '127.0.0.1' })
const leader = app.consul.leader(process.env.LEADER_KEY!, { ttl: process.env.LEADER_TTL!, lockDelay: process.env.LEADER_LOCK_DELAY! })
leader.on('elected', () => { say('elected') })
// On close, 'lost' is emitted before the key is released (leader-election.ts), so the interval ends
// before anyone else can be elected.
leader.on('lost', () => { say('lost') })
const stop = (): void => { app.close().then(() => process.exit(0), () => process.exit(1)) }
process.on('SIGTERM', stop)
// The harness gone (a timed-out test): stop contending, release, and end, as on SIGTERM.
exitWhenOrphaned(stop)
