import { Type, type Static } from '@sinclair/typebox'
import { PAGE_LIMIT } from './schemas.js'

// What this service reads from Consul KV (config/<service>/…, Spring's layout) through @reg/fastify-consul's
// `config` option. A value outside the schema is refused by the plugin and the last good one stays.

export const LiveSettingsSchema = Type.Object({
  /** `config/user-service/pageSize`: the page size when a client sends no `?limit=`. */
  pageSize: Type.Integer({
    minimum: PAGE_LIMIT.min,
    maximum: PAGE_LIMIT.max,
    default: PAGE_LIMIT.default,
    description: `an integer from ${PAGE_LIMIT.min} to ${PAGE_LIMIT.max}`
  })
})

export type LiveSettings = Static<typeof LiveSettingsSchema>

declare module '@reg/fastify-consul' {
  interface ConsulConfig extends LiveSettings {}
}

/** The leader key of the maintenance job, Consul's usual `service/<name>/leader`. */
export const leaderKey = (serviceName: string): string => `service/${serviceName}/leader`
