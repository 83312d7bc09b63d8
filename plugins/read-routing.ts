import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { type ReadScope, readScope } from '../db/replicas.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * `replica`: the handler's plain reads may be served by a read replica (DATABASE_REPLICA_URLS), as
     * db/replicas.ts decides: not inside a transaction, not after the handler wrote, not while the caller's
     * own last write may not have reached it. For routes that only read (hooks still run on the primary);
     * `primary` (the default) keeps every query on the primary.
     */
    reads?: 'replica' | 'primary'
  }
  interface FastifyInstance {
    /** `METHOD url` of every route declared `reads: 'replica'` (tests check each keeps read-your-writes). */
    replicaRoutes: string[]
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * Issue 21: routes declare `config: { reads: 'replica' }`; their handlers run in a read scope that the
 * database pool (db/replicas.ts RoutedPool) consults. After a user's successful write (any non-GET, or a
 * write inside a replica-scoped handler) the primary's WAL position is recorded before the answer leaves, so
 * the next read of that user, on any process, waits for a replica that has replayed it or goes to the primary.
 * Without DATABASE_REPLICA_URLS this plugin does nothing.
 */
export default fp(
  async function readRouting(app) {
    const replicas = app.database.replicas
    const routes: string[] = []
    app.decorate('replicaRoutes', routes)
    const scopes = new WeakMap<FastifyRequest, ReadScope>()

    app.addHook('onRoute', function replicaScopedHandler(route) {
      if (route.config?.reads !== 'replica') return
      for (const method of [route.method].flat()) if (method !== 'HEAD') routes.push(`${method} ${route.url}`)
      if (!replicas) return
      const handler = route.handler
      route.handler = function readsOnReplica(request, reply) {
        const scope: ReadScope = { userId: request.user?.sub, wrote: false }
        scopes.set(request, scope)
        return readScope.run(scope, () => handler.call(this, request, reply))
      }
    })

    if (!replicas) return
    app.addHook('onSend', async function fenceWrites(request, reply, payload) {
      const userId = request.user?.sub
      if (!userId || reply.statusCode >= 400) return payload
      if (SAFE_METHODS.has(request.method) && !scopes.get(request)?.wrote) return payload
      try {
        await replicas.recordWrite(userId)
      } catch (err) {
        // The write is done; without its fence this user may read a replica that has not replayed it yet.
        request.log.warn({ err }, 'read-your-writes fence not recorded')
      }
      return payload
    })
  },
  { name: 'read-routing', dependencies: ['db'] },
)
