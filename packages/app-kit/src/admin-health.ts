import { HTTP_STATUS, type FastifyHealth } from '@reg/fastify-health'
import type { FastifyPluginAsync } from 'fastify'

/**
 * `GET /health` on the admin listener: the app's readiness with every check's output, the same status
 * code as the public route (200, 429, 503). The public port keeps a summary `/health` (the verdict only)
 * for Consul's HTTP check and load balancers; the outputs name upstreams, counts and error messages,
 * which are for operators. Not wrapped in fastify-plugin: one route, nothing to decorate.
 */
export const adminHealthRoute: FastifyPluginAsync<{ health: Pick<FastifyHealth, 'status'> }> = async function adminHealthRoute (fastify, { health }) {
  fastify.route({
    method: ['GET', 'HEAD'],
    url: '/health',
    handler (_request, reply) {
      // Cached and frozen: reading it never runs a check.
      const status = health.status()
      reply.code(HTTP_STATUS[status.status]).header('cache-control', 'no-store').send(status)
    }
  })
}
