import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import { errorResponses } from '../common.ts'
import { profileChanges, toProfile } from './profile.ts'
import { createUserRepository, normaliseEmail } from './repository.ts'
import {
  EmailConfirmBodySchema,
  ProfilePatchSchema,
  ProfileSchema,
  SettingsPutSchema,
  SettingsSchema,
} from './schemas.ts'
import { type SettingKey, type SettingValue, effectiveSettings } from './settings.ts'

const BODY_ERRORS = [400, 413, 415] as const
const gone = () => errors.unauthorized('session_revoked', 'This session has ended; log in again.')

const userRoutes: FastifyPluginAsyncTypebox = async function userRoutes(app) {
  const { db } = app
  const users = createUserRepository(db)
  const { emailChange } = app

  // Every route here is the caller's own account; no id in a path ever names another user.
  app.addHook('onRequest', app.authenticate)

  app.get(
    '/users/me',
    {
      config: { oauthScope: 'profile:read' },
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
          'Send any subset of the fields; answers the whole updated profile. `null` clears date_of_birth, sex, weight and height; `null` on first_name, last_name, sleep_time_goal, tip_audiences or time_zone is `400 validation_failed`. id, email_verified, pending_email, created and updated are read-only and ignored. Ranges: weight 2..500 kg, height 30..275 cm, sleep_time_goal 3600..57600 s, date_of_birth from 1900-01-01 to today. time_zone must be an IANA name known to the server.\n\n' +
          '**Changing the e-mail address.** `email` with a new address needs the current `password` in the same body (missing or wrong: `400 validation_failed` on `password`; wrong ones are counted per account together with the other password re-checks, with backoff from the 5th within an hour: `429 rate_limited` with Retry-After; at most 5 change requests an hour; and, as for every sensitive action, a recent authentication: `401 reauthentication_required` unless the access token comes from a login or `POST /v1/auth/reauthenticate` within REAUTH_WINDOW_S (600 s), made with the second factor when the account has one). Nothing changes yet: the answer shows the old `email` and the new one in `pending_email`, and a 6-digit code is mailed to the new address, valid 24 h. The change happens when that code is sent to `POST /v1/users/me/email/confirm`; the old address is then told and every other session ends. A newer request replaces a pending one. The address is compared ignoring case; one that already belongs to another account gets the very same pending answer (its owner is told by e-mail and no code exists that could confirm it), so the answer never reveals whether an address has an account. `email` equal to the current address is no change (a profile from GET can be sent back as is).',
        security: SECURITY.bearer,
        body: ProfilePatchSchema,
        response: { 200: ProfileSchema, ...errorResponses(...BODY_ERRORS, 401, 429) },
      },
    },
    async function patchProfile(request, reply) {
      const { changes, problems } = profileChanges(request.body)
      if (changes.timeZone && !(await users.isKnownTimeZone(changes.timeZone))) {
        problems.push({ field: 'time_zone', problem: 'is not an IANA time zone name' })
      }
      if (problems.length) throw errors.validation(problems)
      const { email, password } = request.body
      if (email !== undefined) {
        const current = await users.findById(request.user.sub)
        if (!current) throw gone()
        if (normaliseEmail(email) !== current.email) {
          // A sensitive action: a recent authentication (with the second factor, if the account has one).
          await app.requireRecentAuth.call(app, request, reply)
          await emailChange.request(current, email, password)
        }
      }
      const changed = Object.values(changes).some((v) => v !== undefined)
      const user = await app.db.transaction(async (tx) => {
        const updated = await users.updateProfile(request.user.sub, changes, tx)
        if (updated && changed) {
          await app.changes.record(tx, request.user.sub, { type: 'profile', action: 'updated', id: request.user.sub })
        }
        return updated
      })
      app.profileCache.invalidate(request.user.sub)
      if (!user) throw gone()
      return toProfile(user)
    },
  )

  app.post(
    '/users/me/email/confirm',
    {
      config: { rateLimit: { max: 20, timeWindow: 900_000 } },
      schema: {
        tags: ['user'],
        summary: 'Confirm an e-mail change with the code mailed to the new address',
        description:
          'Makes `pending_email` the login address (counted as verified) and answers the profile. The old address is told by e-mail, and every other session of the account ends; this one stays. A wrong, used or expired code, or no pending change: `400 invalid_code` (5 wrong tries burn the code).',
        security: SECURITY.bearer,
        body: EmailConfirmBodySchema,
        response: { 200: ProfileSchema, ...errorResponses(...BODY_ERRORS, 401, 429) },
      },
    },
    async function confirmEmailChange(request) {
      return toProfile(await emailChange.confirm(request.user.sub, request.user.sid, request.body.code))
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
