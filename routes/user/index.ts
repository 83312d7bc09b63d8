import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import { errorResponses } from '../common.ts'
import { profileChanges, toProfile } from './profile.ts'
import { createUserRepository } from './repository.ts'
import { ProfilePatchSchema, ProfileSchema, SettingsPutSchema, SettingsSchema } from './schemas.ts'
import { type SettingKey, type SettingValue, effectiveSettings } from './settings.ts'

const BODY_ERRORS = [400, 413, 415] as const
const gone = () => errors.unauthorized('session_revoked', 'This session has ended; log in again.')

const userRoutes: FastifyPluginAsyncTypebox = async function userRoutes(app) {
  const { db } = app
  const users = createUserRepository(db)

  // Every route here is the caller's own account; no id in a path ever names another user.
  app.addHook('onRequest', app.authenticate)

  app.get(
    '/users/me',
    {
      schema: {
        tags: ['user'],
        summary: 'My profile',
        security: SECURITY.bearer,
        response: { 200: ProfileSchema, ...errorResponses(401) },
      },
    },
    async function getProfile(request) {
      // Cached for at most SESSION_CACHE_TTL_MS, like the session check before it (see plugins/auth.ts).
      const profile = await app.profileCache.get(request.user.sub)
      if (!profile) throw gone()
      return profile
    },
  )

  app.patch(
    '/users/me',
    {
      schema: {
        tags: ['user'],
        summary: 'Change some or all of my profile',
        description:
          'Send any subset of the fields; answers the whole updated profile. `null` clears date_of_birth, sex, weight and height; `null` on first_name, last_name, sleep_time_goal, tip_audiences or time_zone is `400 validation_failed`. id, email, email_verified, created and updated are read-only and ignored. Ranges: weight 2..500 kg, height 30..275 cm, sleep_time_goal 3600..57600 s, date_of_birth from 1900-01-01 to today. time_zone must be an IANA name known to the server.',
        security: SECURITY.bearer,
        body: ProfilePatchSchema,
        response: { 200: ProfileSchema, ...errorResponses(...BODY_ERRORS, 401) },
      },
    },
    async function patchProfile(request) {
      const { changes, problems } = profileChanges(request.body)
      if (changes.timeZone && !(await users.isKnownTimeZone(changes.timeZone))) {
        problems.push({ field: 'time_zone', problem: 'is not an IANA time zone name' })
      }
      if (problems.length) throw errors.validation(problems)
      const user = await users.updateProfile(request.user.sub, changes)
      app.profileCache.invalidate(request.user.sub)
      if (!user) throw gone()
      return toProfile(user)
    },
  )

  app.get(
    '/users/me/settings',
    {
      schema: {
        tags: ['user'],
        summary: 'My account settings',
        description: 'Every key with its value: the one I set, or the default.',
        security: SECURITY.bearer,
        response: { 200: SettingsSchema, ...errorResponses(401) },
      },
    },
    async function getSettings(request) {
      return effectiveSettings(await users.settings(request.user.sub))
    },
  )

  app.put(
    '/users/me/settings',
    {
      schema: {
        tags: ['user'],
        summary: 'Set some of my account settings',
        description:
          'Keys not sent keep their value; `null` resets a key to its default. Answers every key with its value, as GET.',
        security: SECURITY.bearer,
        body: SettingsPutSchema,
        response: { 200: SettingsSchema, ...errorResponses(...BODY_ERRORS, 401) },
      },
    },
    async function putSettings(request) {
      const values = request.body as Partial<Record<SettingKey, SettingValue | null>>
      const stored = await db.transaction(async (tx) => {
        await users.putSettings(request.user.sub, values, tx)
        return users.settings(request.user.sub, tx)
      })
      return effectiveSettings(stored)
    },
  )
}

export default userRoutes
