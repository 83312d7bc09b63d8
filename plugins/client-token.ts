import type { onRequestAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { errors } from './errors.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook for the routes that have no user yet: checks `x-auth-token`. */
    requireClient: onRequestAsyncHookHandler
  }
  interface FastifyRequest {
    clientApp: { id: string; name: string } | null
  }
}

export default fp(
  async function clientTokenPlugin(app) {
    const clients = app.clientRepository
    app.decorateRequest('clientApp', null)

    app.decorate('requireClient', async function requireClient(request) {
      const header = request.headers['x-auth-token']
      const client = typeof header === 'string' ? await clients.verifyToken(header) : null
      if (!client) throw errors.unauthorized('invalid_client', 'A valid x-auth-token client token is required.')
      request.clientApp = client
    } satisfies onRequestAsyncHookHandler)
  },
  { name: 'client-token', dependencies: ['db', 'errors', 'client-repository'] },
)
