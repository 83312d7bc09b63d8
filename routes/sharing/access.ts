import type { FastifyRequest } from 'fastify'
import type { Db } from '../../db/client.ts'
import { errors } from '../../plugins/errors.ts'
import { type Scope, createSharingRepository } from '../sharing/repository.ts'

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
