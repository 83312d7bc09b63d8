import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { DbOrTx } from '../../db/client.ts'
import { errors } from '../../plugins/errors.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import {
  PageSchema,
  SUCCESS,
  StatusSuccessSchema,
  cursorDay,
  decodeCursor,
  encodeCursor,
  errorResponses,
  keysetPage,
} from '../common.ts'
import { updatedSince } from '../journal/schemas.ts'
import { todayIn } from '../journal/zone.ts'
import { ownerReadRoutes } from '../owner-reads.ts'
import { createDayFeedbackRepository, toDayFeedbackJson } from './repository.ts'
import { DateParamsSchema, DayFeedbackBodySchema, DayFeedbackListQuerySchema, DayFeedbackSchema } from './schemas.ts'

/** The read-only routes: the caller's own day feedback, or (`shared`) a shared owner's. */
export const dayFeedbackReadRoutes = ownerReadRoutes('day-feedback', async function dayFeedbackReadRoutes(app, reads) {
  const feedback = createDayFeedbackRepository(app.db)

  app.get(
    '/day-feedback',
    reads.route({
      tag: 'day-feedback',
      summary: 'List my day feedback, newest day first',
      sharedSummary: "List a shared owner's day feedback, newest day first",
      description: 'Optionally from `from` to `to`, both days inclusive. Cursor-paginated.',
      querystring: DayFeedbackListQuerySchema,
      response: { 200: PageSchema(DayFeedbackSchema), ...errorResponses(400, 401) },
    }),
    async function listDayFeedback(request) {
      const { from, to, cursor } = request.query
      if (from && to && from > to) throw errors.validation([{ field: 'query.to', problem: 'must not be before from' }])
      const decoded = decodeCursor(cursor, 1)?.[0]
      const before = decoded === undefined ? undefined : cursorDay(decoded)
      const ownerId = await reads.owner(request)
      return keysetPage(
        request.query,
        (take) => feedback.page(ownerId, { from, to, limit: take, before, updatedSince: updatedSince(request.query) }),
        toDayFeedbackJson,
        (r) => encodeCursor([r.day]),
      )
    },
  )

  reads.getOne('/day-feedback/:date', {
    tag: 'day-feedback',
    summary: 'Get the feedback of one day',
    sharedSummary: "Get a shared owner's feedback of one day",
    params: DateParamsSchema,
    item: DayFeedbackSchema,
    notFound: 'No feedback for this day.',
    find: function getDayFeedback(ownerId, { date }) {
      return feedback.get(ownerId, date)
    },
    toJson: toDayFeedbackJson,
  })
})

const dayFeedbackRoutes: FastifyPluginAsyncTypebox = async function dayFeedbackRoutes(app) {
  const feedback = createDayFeedbackRepository(app.db)
  const base = { onRequest: app.authenticate }
  const common = { tags: ['day-feedback'], security: SECURITY.bearer }
  const dayChanged = (tx: DbOrTx, userId: string, day: string) =>
    app.dataChanges.changed(tx, { userId, source: 'day_feedback', from: day, to: day })

  app.put(
    '/day-feedback/:date',
    {
      ...base,
      schema: {
        ...common,
        summary: 'Create or replace the feedback of one day',
        description:
          "One entry per calendar day of the user's time zone. 201 when created, 200 when replaced (insights computed from that day's entry are then withdrawn until the rules compute them again). A day later than today in the user's time zone is refused (`400 validation_failed` on `params.date`); so is an entry with none of mood, rating, note.",
        params: DateParamsSchema,
        body: DayFeedbackBodySchema,
        response: {
          200: DayFeedbackSchema,
          201: DayFeedbackSchema,
          ...errorResponses(400, 401, 413, 415),
        },
      },
    },
    async function putDayFeedback(request, reply) {
      const { body } = request
      if (body.mood == null && body.rating == null && body.note == null) {
        throw errors.validation([{ field: 'body', problem: 'must have at least one of mood, rating, note' }])
      }
      const timeZone = await app.userRepository.timeZone(request.user.sub)
      if (request.params.date > todayIn(timeZone)) {
        throw errors.validation([{ field: 'params.date', problem: 'must not be in the future' }])
      }
      const { row, created } = await app.db.transaction(async (tx) => {
        const result = await feedback.put(request.user.sub, request.params.date, body, tx)
        // Replacing a day's entry changes what insights of that day were computed from.
        if (!result.created) await dayChanged(tx, request.user.sub, request.params.date)
        await app.changes.record(tx, request.user.sub, {
          type: 'day_feedback',
          action: result.created ? 'created' : 'updated',
          id: request.params.date,
        })
        return result
      })
      return reply.status(created ? 201 : 200).send(toDayFeedbackJson(row))
    },
  )

  app.delete(
    '/day-feedback/:date',
    {
      ...base,
      schema: {
        ...common,
        summary: 'Delete the feedback of one day',
        description:
          'Insights computed from that day (mood trend, journaling streak) are withdrawn at once, for viewers too, until the rules compute them again from the remaining data.',
        params: DateParamsSchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async function deleteDayFeedback(request) {
      const removed = await app.db.transaction(async (tx) => {
        if (!(await feedback.remove(request.user.sub, request.params.date, tx))) return false
        await dayChanged(tx, request.user.sub, request.params.date)
        await app.changes.record(tx, request.user.sub, {
          type: 'day_feedback',
          action: 'deleted',
          id: request.params.date,
        })
        return true
      })
      if (!removed) throw errors.notFound('No feedback for this day.')
      return SUCCESS
    },
  )

  await app.register(dayFeedbackReadRoutes)
}

export default dayFeedbackRoutes
