import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { DbOrTx } from '../../db/client.ts'
import { instantDate } from '../../plugins/date-time-format.ts'
import { errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import {
  IdParamsSchema,
  PageSchema,
  SUCCESS,
  StatusSuccessSchema,
  decodeTimeCursor,
  encodeTimeCursor,
  errorResponses,
  keysetPage,
} from '../common.ts'
import { parseTimeRange } from '../journal/paging.ts'
import { updatedSince } from '../journal/schemas.ts'
import { refuseFuture } from '../journal/zone.ts'
import { ownerReadRoutes } from '../owner-reads.ts'
import { createCheckinRepository, toCheckinJson } from './repository.ts'
import { CheckinCreateSchema, CheckinListQuerySchema, CheckinPatchSchema, CheckinSchema } from './schemas.ts'

const BODY_ERRORS = [400, 401, 413, 415] as const

/** The read-only routes: the caller's own check-ins, or (`shared`) a shared owner's. */
export const checkinReadRoutes = ownerReadRoutes('checkin', async function checkinReadRoutes(app, reads) {
  const checkins = createCheckinRepository(app.db)

  app.get(
    '/checkins',
    reads.route({
      tag: 'checkin',
      summary: 'List my check-ins, newest first',
      sharedSummary: "List a shared owner's check-ins, newest first",
      description: 'Optionally within `[from, to)`, and only those changed since `updated_since`. Cursor-paginated.',
      querystring: CheckinListQuerySchema,
      response: { 200: PageSchema(CheckinSchema), ...errorResponses(400, 401) },
    }),
    async function listCheckins(request) {
      const range = parseTimeRange(request.query.from, request.query.to)
      const after = decodeTimeCursor(request.query.cursor)
      const ownerId = await reads.owner(request)
      return keysetPage(
        request.query,
        (take) => checkins.page(ownerId, { ...range, limit: take, after, updatedSince: updatedSince(request.query) }),
        toCheckinJson,
        (r) => encodeTimeCursor(r.at, r.id),
      )
    },
  )

  reads.getOne('/checkins/:id', {
    tag: 'checkin',
    summary: 'Get one of my check-ins',
    sharedSummary: "Get one of a shared owner's check-ins",
    params: IdParamsSchema,
    item: CheckinSchema,
    notFound: 'No such check-in.',
    find: function getCheckin(ownerId, { id }) {
      return checkins.get(ownerId, id)
    },
    toJson: toCheckinJson,
  })
})

const checkinRoutes: FastifyPluginAsyncTypebox = async function checkinRoutes(app) {
  const checkins = createCheckinRepository(app.db)
  // An edit or deletion withdraws the insights computed from check-ins on the days it touches.
  const journalChanged = (tx: DbOrTx, userId: string, a: Date, b: Date) =>
    app.dataChanges.changed(tx, {
      userId,
      source: 'checkin',
      from: a < b ? a : b,
      to: a < b ? b : a,
    })
  const base = { onRequest: app.authenticate }
  const common = { tags: ['checkin'], security: SECURITY.bearer }

  app.post(
    '/checkins',
    {
      ...base,
      schema: {
        ...common,
        summary: 'Record a check-in',
        description:
          'Mood is required; energy and stress are optional. All three are 1..5. A timestamp in the future (beyond 5 minutes of clock skew) is refused with `400 validation_failed`.',
        body: CheckinCreateSchema,
        response: { 201: CheckinSchema, ...errorResponses(...BODY_ERRORS) },
      },
    },
    async function createCheckin(request, reply) {
      if (request.body.timestamp) refuseFuture('timestamp', instantDate(request.body.timestamp))
      const row = await app.db.transaction(async (tx) => {
        const created = await checkins.create(request.user.sub, request.body, tx)
        await app.changes.record(tx, request.user.sub, { type: 'checkin', action: 'created', id: created.id })
        return created
      })
      return reply.status(201).send(toCheckinJson(row))
    },
  )

  app.patch(
    '/checkins/:id',
    {
      ...base,
      schema: {
        ...common,
        summary: 'Edit a check-in',
        description:
          'Only the fields given change; null clears energy, stress or note. Same scales and limits as create. Insights computed from check-ins of the days before and after the edit are withdrawn until the rules compute them again (next `GET /v1/insights`).',
        params: IdParamsSchema,
        body: CheckinPatchSchema,
        response: { 200: CheckinSchema, ...errorResponses(...BODY_ERRORS, 404) },
      },
    },
    async function editCheckin(request) {
      if (request.body.timestamp) refuseFuture('timestamp', instantDate(request.body.timestamp))
      const row = await app.db.transaction(async (tx) => {
        const before = await checkins.get(request.user.sub, request.params.id, tx)
        const after = before && (await checkins.update(request.user.sub, request.params.id, request.body, tx))
        if (before && after) {
          await journalChanged(tx, request.user.sub, before.at, after.at)
          await app.changes.record(tx, request.user.sub, { type: 'checkin', action: 'updated', id: after.id })
        }
        return after
      })
      if (!row) throw errors.notFound('No such check-in.')
      return toCheckinJson(row)
    },
  )

  app.delete(
    '/checkins/:id',
    {
      ...base,
      schema: {
        ...common,
        summary: 'Delete a check-in',
        description:
          'Insights computed from check-ins of its day (mood trend, journaling streak) are withdrawn at once, for viewers too, until the rules compute them again from the remaining data.',
        params: IdParamsSchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async function deleteCheckin(request) {
      const removed = await app.db.transaction(async (tx) => {
        const before = await checkins.get(request.user.sub, request.params.id, tx)
        if (!before || !(await checkins.remove(request.user.sub, request.params.id, tx))) return false
        await journalChanged(tx, request.user.sub, before.at, before.at)
        await app.changes.record(tx, request.user.sub, { type: 'checkin', action: 'deleted', id: before.id })
        return true
      })
      if (!removed) throw errors.notFound('No such check-in.')
      return SUCCESS
    },
  )

  await app.register(checkinReadRoutes)
}

export default checkinRoutes
