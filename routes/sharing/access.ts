import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Db } from '../../db/client.ts'
import { errors } from '../../plugins/errors.ts'
import { type Scope, createSharingRepository } from './repository.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The share and scope check of a viewer's read (see `createShareAccess`); used by the owner-reads plugin. */
    shareAccess: ShareAccess
  }
}

/**
 * The one check before a viewer reads another user's data: an active share with that scope, or a
 * common peer group. Nothing shared answers 404 (as a missing user would); a share without the
 * scope answers 403.
 */
export function createShareAccess(db: Db) {
  const sharing = createSharingRepository(db)
  return async function ownerFor(request: FastifyRequest, ownerId: string, scope: Scope): Promise<string> {
    const viewerId = request.user.sub
    if (ownerId === viewerId) return ownerId
    const scopes = await sharing.readableScopes(viewerId, ownerId)
    if (!scopes) throw errors.notFound('Nothing is shared with you by this user.')
    if (!scopes.includes(scope)) throw errors.forbidden(`This share does not include ${scope}.`)
    return ownerId
  }
}

export type ShareAccess = ReturnType<typeof createShareAccess>

/** The sharing domain's check as a named decorator, so the owner-reads plugin depends on it by name. */
export default fp(
  async function shareAccessPlugin(app) {
    app.decorate('shareAccess', createShareAccess(app.db))
  },
  { name: 'share-access', dependencies: ['db', 'errors'] },
)
