import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import {
  decodeTimeCursor,
  encodeTimeCursor,
  errorResponses,
  IdParamsSchema,
  PageSchema,
  StatusSuccessSchema,
  SUCCESS,
} from '../common.ts'
import { parseTimeRange, toPage } from '../journal/paging.ts'
import { refuseFuture } from '../journal/zone.ts'
import { createCheckinRepository, toCheckinJson } from './repository.ts'
import { CheckinCreateSchema, CheckinListQuerySchema, CheckinPatchSchema, CheckinSchema } from './schemas.ts'

const BODY_ERRORS = [400, 401, 413, 415] as const

const checkinRoutes: FastifyPluginAsyncTypebox = async function checkinRoutes(app) {
  const checkins = createCheckinRepository(app.db)
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
      if (request.body.timestamp) refuseFuture('timestamp', new Date(request.body.timestamp))
      const row = await checkins.create(request.user.sub, request.body)
      return reply.status(201).send(toCheckinJson(row))
    },
  )

  app.get(
    '/checkins',
    {
      ...base,
      schema: {
        ...common,
        summary: 'List my check-ins, newest first',
        description: 'Optionally within `[from, to)`. Cursor-paginated.',
        querystring: CheckinListQuerySchema,
        response: { 200: PageSchema(CheckinSchema), ...errorResponses(400, 401) },
      },
    },
    async function listCheckins(request) {
      const { limit = 50, cursor } = request.query
      const rows = await checkins.page(request.user.sub, {
        ...parseTimeRange(request.query.from, request.query.to),
        limit: limit + 1,
        after: decodeTimeCursor(cursor),
      })
      return toPage(rows, limit, toCheckinJson, (r) => encodeTimeCursor(r.at, r.id))
    },
  )

  app.get(
    '/checkins/:id',
    {
      ...base,
      schema: {
        ...common,
        summary: 'Get one of my check-ins',
        params: IdParamsSchema,
        response: { 200: CheckinSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async function getCheckin(request) {
      const row = await checkins.get(request.user.sub, request.params.id)
      if (!row) throw errors.notFound('No such check-in.')
      return toCheckinJson(row)
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
          'Only the fields given change; null clears energy, stress or note. Same scales and limits as create.',
        params: IdParamsSchema,
        body: CheckinPatchSchema,
        response: { 200: CheckinSchema, ...errorResponses(...BODY_ERRORS, 404) },
      },
    },
    async function editCheckin(request) {
      if (request.body.timestamp) refuseFuture('timestamp', new Date(request.body.timestamp))
      const row = await checkins.update(request.user.sub, request.params.id, request.body)
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
        params: IdParamsSchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async function deleteCheckin(request) {
      if (!(await checkins.remove(request.user.sub, request.params.id))) throw errors.notFound('No such check-in.')
      return SUCCESS
    },
  )
}

export default checkinRoutes
