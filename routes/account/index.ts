import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import { verifyPassword } from '../auth/passwords.ts'
import { SUCCESS, StatusSuccessSchema, errorResponses } from '../common.ts'
import { createUserRepository } from '../user/repository.ts'
import { createAccountDeletionService } from './deletion.ts'
import { exportSections } from './export-sections.ts'
import { exportStream } from './export.ts'
import { DeleteAccountBodySchema, ExportDocumentSchema } from './schemas.ts'

const BODY_ERRORS = [400, 413, 415] as const
const gone = () => errors.unauthorized('session_revoked', 'This session has ended; log in again.')

/**
 * What spans every domain of an account: deleting it and exporting it. It sits above the domains and
 * depends on them (their repositories), never the other way round.
 */
const accountRoutes: FastifyPluginAsyncTypebox = async function accountRoutes(app) {
  const { db, limits } = app
  const users = createUserRepository(db)
  const deletion = createAccountDeletionService(app)

  // Every route here is the caller's own account; no id in a path ever names another user.
  app.addHook('onRequest', app.authenticate)

  app.delete(
    '/users/me',
    {
      config: { rateLimit: { max: 10, timeWindow: 900_000 } },
      schema: {
        tags: ['user'],
        summary: 'Delete my account and all my data',
        description:
          'Needs the current password (a wrong one: `400 validation_failed` on `password`; after 4 wrong ones within 15 minutes, `429 rate_limited`). In one transaction the account and every row that belongs to it go: profile, settings, sessions, login history, measurements, journal, shares both ways, group memberships, files it owns, and mail queued to its address. Every token stops working and the next login fails. This cannot be undone; export the data first.',
        security: SECURITY.bearer,
        body: DeleteAccountBodySchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(...BODY_ERRORS, 401, 429) },
      },
    },
    async function deleteAccount(request) {
      const user = await users.findById(request.user.sub)
      if (!user) throw gone()
      if (!(await verifyPassword(request.body.password, user.passwordHash))) {
        await limits.hit(`delete-account:user:${user.id}`, 4, 900)
        throw errors.validation([{ field: 'password', problem: 'is not your current password' }])
      }
      if (!(await deletion.deleteAccount(user.id))) throw gone()
      request.log.info({ userId: user.id }, 'account deleted by its owner')
      return SUCCESS
    },
  )

  app.get(
    '/users/me/export',
    {
      config: { rateLimit: { max: 10, timeWindow: 3600_000 } },
      schema: {
        tags: ['user'],
        summary: 'Download all my data as one JSON document',
        description:
          'Streamed (chunked transfer encoding): the server writes rows as it reads them, so the size of the account does not matter. `sections` holds one array per data domain; a download that does not end with `}}` was cut short and should be retried. Rows are read in batches, not in one snapshot: data written during the download may or may not appear. At most 10 exports an hour from one IP.',
        security: SECURITY.bearer,
        response: { 200: ExportDocumentSchema, ...errorResponses(401, 429) },
      },
    },
    async function exportAccount(request, reply) {
      const stream = exportStream(db, request.user.sub, exportSections)
      stream.on('error', (err) => request.log.error({ err }, 'account export failed mid-stream'))
      const day = new Date().toISOString().slice(0, 10)
      return reply
        .type('application/json; charset=utf-8')
        .header('content-disposition', `attachment; filename="nowatch-export-${day}.json"`)
        .header('cache-control', 'no-store')
        .send(stream as never) // a stream is sent as is; the 200 schema documents the document it carries
    },
  )
}

export default accountRoutes
