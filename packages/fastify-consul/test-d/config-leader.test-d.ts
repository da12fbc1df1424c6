// Type tests (tsd) for configuration from KV and leader election, as a strict consumer sees them.
import { Type, type Static } from '@sinclair/typebox'
import fastify from 'fastify'
import { expectError, expectType } from 'tsd'
import consulPlugin, { errors, type ConfigHandle, type ConfigRefusal, type ConsulConfig, type LeaderHandle } from '@reg/fastify-consul'

const Settings = Type.Object({ pageSize: Type.Integer({ default: 50 }), db: Type.Object({ url: Type.String() }) })

declare module '@reg/fastify-consul' {
  interface ConsulConfig extends Static<typeof Settings> {}
}

const app = fastify()
app.register(consulPlugin, { service: { name: 'users' }, config: { schema: Settings, format: 'YAML', restartRequired: ['db.url'] } })

// fastify.config is the merged schema type, read-only.
expectType<number>(app.config.pageSize)
expectType<string>(app.config.db.url)
expectError(app.config.pageSize = 1)
expectError(app.register(consulPlugin, { service: { name: 'users' }, config: { format: 'YAML' } }))
expectError(app.register(consulPlugin, { service: { name: 'users' }, config: { schema: Settings, format: 'XML' } }))

const handle = app.consul.config
expectType<ConfigHandle<ConsulConfig> | undefined>(handle)
handle?.on('change', (config, paths) => {
  expectType<number>(config.pageSize)
  expectType<readonly string[]>(paths)
})
handle?.on('refused', (refusal) => expectType<ConfigRefusal>(refusal))
expectType<string | undefined>(handle?.refused?.key)
expectError(handle?.on('changed', () => {}))

const leader = app.consul.leader('service/users/leader', { ttl: '10s', lockDelay: 1000 })
expectType<LeaderHandle>(leader)
expectType<boolean>(leader.isLeader)
leader.on('lost', (reason) => expectType<string>(reason))
expectType<Promise<void>>(leader.release())
expectError(app.consul.leader('k', { ttl: true }))
expectError(leader.on('won', () => {}))

expectType<'FST_REG_CONFIG_INVALID'>(new errors.ConfigInvalidError('k', 'x').code)
expectType<'FST_REG_LEADER_INVALID_OPTION'>(new errors.LeaderInvalidOptionError('k', 'x').code)
