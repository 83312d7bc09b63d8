import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import { createPasswordCheck } from '../auth/password-check.ts'
import { SUCCESS, StatusSuccessSchema, errorResponses } from '../common.ts'
import { CONTENT_TYPES, EXPORT_FORMATS_DESCRIPTION, FILE_EXTENSIONS, formatStream } from '../export-formats/index.ts'
import { ExportQuerySchema } from '../export-formats/schemas.ts'
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
  const { db } = app
  const users = createUserRepository(db)
  const deletion = createAccountDeletionService(app)
  const checkAccountPassword = createPasswordCheck(db)

  // Every route here is the caller's own account; no id in a path ever names another user.
  app.addHook('onRequest', app.authenticate)

  app.delete(
    '/users/me',
    {
      preHandler: app.requireRecentAuth,
      config: { rateLimit: { max: 10, timeWindow: 900_000 } },
      schema: {
        tags: ['user'],
        summary: 'Delete my account and all my data',
        description:
          'Needs the current password (a wrong one: `400 validation_failed` on `password`). Wrong passwords are counted per account, together with change password and the other routes that re-check the password: from the 5th within an hour each further try must wait twice as long (1 s, 2 s, 4 s … 15 min), past 100 in an hour none is checked, answering `429 rate_limited` with Retry-After; a right password clears the count. At most 10 tries in 15 minutes from one IP. In one transaction the account and every row that belongs to it go: profile, settings, sessions, login history, measurements, journal, shares both ways, group memberships, files it owns, and mail queued to its address. Every token stops working and the next login fails. This cannot be undone; export the data first. Needs a recent authentication (step-up): `401 reauthentication_required` unless the access token comes from a login or `POST /v1/auth/reauthenticate` within REAUTH_WINDOW_S (600 s), made with the second factor when the account has one.',
        security: SECURITY.bearer,
        body: DeleteAccountBodySchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(...BODY_ERRORS, 401, 429) },
      },
    },
    async function deleteAccount(request) {
      const user = await users.findById(request.user.sub)
      if (!user) throw gone()
      if (!(await checkAccountPassword(user, request.body.password, 'delete_account'))) {
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
      config: { rateLimit: { max: 10, timeWindow: 3600_000 }, reads: 'replica' },
      schema: {
        tags: ['user'],
        summary: 'Download all my data as one JSON document',
        description:
          'Streamed (chunked transfer encoding): the server writes rows as it reads them, so the size of the account does not matter. `sections` holds one array per data domain; a download that does not end with `}}` was cut short and should be retried. Rows are read in batches, not in one snapshot: data written during the download may or may not appear. At most 10 exports an hour from one IP. The 200 schema is the default `format=json`; ' +
          EXPORT_FORMATS_DESCRIPTION,
        security: SECURITY.bearer,
        querystring: ExportQuerySchema,
        response: { 200: ExportDocumentSchema, ...errorResponses(400, 401, 429) },
      },
    },
    async function exportAccount(request, reply) {
      const { format } = request.query
      if (format && format !== 'json') {
        const out = formatStream(format, db, request.user.sub)
        out.on('error', (err) => request.log.error({ err, format }, 'account export failed mid-stream'))
        return reply
          .type(CONTENT_TYPES[format])
          .header(
            'content-disposition',
            `attachment; filename="nowatch-export-${new Date().toISOString().slice(0, 10)}.${FILE_EXTENSIONS[format]}"`,
          )
          .header('cache-control', 'no-store')
          .send(out as never)
      }
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
