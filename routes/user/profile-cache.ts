import fp from 'fastify-plugin'
import { TtlCache } from '../../plugins/auth.ts'
import { toProfile } from './profile.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * GET /v1/users/me's profile, cached like the session state (SESSION_CACHE_TTL_MS). A change made by
     * this process invalidates it at once (call `invalidate(userId)` after writing the user row); one made
     * by another process shows within that time.
     */
    profileCache: TtlCache<ReturnType<typeof toProfile> | null>
  }
}

/** User-domain state, kept here rather than in the auth plugin; the auth plugin depends on it by name. */
export default fp(
  async function profileCachePlugin(app) {
    const users = app.userRepository
    app.decorate(
      'profileCache',
      new TtlCache(app.config.SESSION_CACHE_TTL_MS, async (userId) => {
        const user = await users.findById(userId)
        return user ? toProfile(user) : null
      }),
    )
  },
  { name: 'profile-cache', dependencies: ['config', 'user-repository'] },
)
