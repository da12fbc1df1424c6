// Compiled by `pnpm test:types` with exactOptionalPropertyTypes: a strict consumer may pass undefined
// wherever it means "not set" (process.env.X, a port read from somewhere), as issue #29 asked; what is
// required stays required. Imports the package by name, so it checks the built declarations.
import fastify from 'fastify'
import consulPlugin, {
  type ConsulPluginOptions,
  type DiscoverOptions,
  type DiscoveryOptions,
  type DispatcherOptions,
  type DispatchOptions,
  type GrpcCheckOptions,
  type HttpCheckOptions,
  type ServiceOptions
} from '@reg/fastify-consul'
import healthPlugin, { type CheckOptions, type HealthPluginOptions } from '@reg/fastify-health'

const port: number | undefined = process.env.PORT === undefined ? undefined : Number(process.env.PORT)

const service: ServiceOptions = { name: 'users', id: process.env.SERVICE_ID, port, address: process.env.HOST, tags: undefined, meta: undefined }
const check: HttpCheckOptions = { type: 'http', path: undefined, interval: process.env.CHECK_INTERVAL, method: undefined, header: { authorization: process.env.TOKEN ?? '' } }
const grpc: GrpcCheckOptions = { type: 'grpc', port, grpcService: process.env.GRPC_SERVICE, failuresBeforeCritical: undefined }
const options: ConsulPluginOptions = {
  service,
  check,
  consul: { address: process.env.CONSUL_ADDR, token: process.env.CONSUL_TOKEN, tokenFile: undefined },
  failFast: undefined,
  retry: { base: undefined, cap: process.env.RETRY_CAP },
  discovery: { tag: process.env.TAG, readyTimeout: undefined, retries: undefined, balancer: undefined }
}
const discover: DiscoverOptions = { dc: process.env.DC, passingOnly: undefined }
const guessed: DiscoveryOptions = discover
const dispatch: DispatchOptions = { retries: undefined, perTryTimeout: process.env.PER_TRY }
const both: DispatcherOptions = { ...discover, ...dispatch }
const health: HealthPluginOptions = { path: undefined, details: undefined, underPressure: { maxEventLoopDelay: undefined } }
const checkOptions: CheckOptions = { timeout: undefined, grace: process.env.GRACE }

// @ts-expect-error service.name is required: undefined is not a name
const noName: ServiceOptions = { name: undefined }
// @ts-expect-error a check type is not optional for tcp checks
const tcp: ConsulPluginOptions['check'] = { type: undefined, interval: '1s', ttl: '1s' }

const app = fastify()
await app.register(healthPlugin, health)
await app.register(consulPlugin, options)
app.health.addCheck('db', () => {}, checkOptions)
app.consul.discover('users', guessed)
app.consul.dispatcher('users', both)
export { noName, tcp, grpc }
