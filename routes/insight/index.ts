import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
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
import { updatedSince } from '../journal/schemas.ts'
import { todayIn } from '../journal/zone.ts'
import { ownerReadRoutes } from '../owner-reads.ts'
import { createInsightEngine } from './engine.ts'
import { createInsightRepository, toFeedbackJson, toInsightJson, toReflectionJson } from './repository.ts'
import { DEFAULT_RULES } from './rules.ts'
import {
  FeedbackBodySchema,
  FeedbackSchema,
  InsightListQuerySchema,
  InsightSchema,
  REFLECTIONS_PER_INSIGHT,
  ReflectionBodySchema,
  ReflectionListQuerySchema,
  ReflectionParamsSchema,
  ReflectionSchema,
  SharedInsightSchema,
} from './schemas.ts'

const BODY_ERRORS = [400, 401, 413, 415] as const

/**
 * The read-only routes: the caller's own insights, or (`shared`) a shared owner's. A viewer reads
 * the insights as stored: reading never runs the rules for them (that would write to the owner's
 * data), and the owner's feedback on an insight is left out, like the reflections: those are the
 * owner's notes about the insight, not part of it.
 */
export const insightReadRoutes = ownerReadRoutes('insight', async function insightReadRoutes(app, reads) {
  const insights = createInsightRepository(app.db)
  const engine = createInsightEngine(app.db, DEFAULT_RULES, (tx, userId, rows) =>
    app.changes.record(
      tx,
      userId,
      rows.map((r) => ({
        type: 'insight' as const,
        action: r.inserted ? ('created' as const) : ('updated' as const),
        id: r.id,
      })),
    ),
  )
  const Insight = reads.shared ? SharedInsightSchema : InsightSchema

  // Insights outlive nothing they were computed from: an edit or deletion of that data (samples, check-ins,
  // day feedback, activities …) on the days an insight read withdraws it in the same transaction. Listened
  // to once, by the owner's plugin (the shared-read registration of these routes does not listen again).
  if (!reads.shared) {
    app.dataChanges.listen(async function withdrawInsights(tx, change) {
      const zone = await app.userRepository.timeZone(change.userId, tx)
      const day = (v: Date | string) => (typeof v === 'string' ? v : todayIn(zone, v))
      const withdrawn = await insights.withdrawDerivedFrom(
        change.userId,
        change.source,
        day(change.from),
        day(change.to),
        tx,
      )
      // A withdrawn insight is gone for readers: a tombstone in the feed (it may come back, same id, as created).
      await app.changes.record(
        tx,
        change.userId,
        withdrawn.map((id) => ({ type: 'insight' as const, action: 'deleted' as const, id })),
      )
    })
  }

  app.get(
    '/insights',
    reads.route(
      {
        tag: 'insight',
        summary: 'List my insights, newest first',
        sharedSummary: "List a shared owner's insights, newest first",
        description: reads.shared
          ? 'The insights the rules have produced so far (a viewer reading does not run them), without the owner’s feedback; an insight whose data was edited or deleted is withdrawn for viewers at once. Cursor-paginated; `kind` filters by rule.'
          : 'Reading the first page (no cursor) first runs the rules on my data; a rule says one thing once per period, so reading again adds nothing new unless the data changed. When data an insight was computed from is edited or deleted (samples in its window, check-ins, day feedback, activities), the insight is withdrawn at once — hidden here, in `GET /v1/insights/{id}` (404) and from viewers — and the next run recomputes it in place (same id, feedback and reflections kept) with the numbers of the remaining data if its rule still supports it for that period; otherwise it stays withdrawn. Cursor-paginated; `kind` filters by rule.',
        querystring: InsightListQuerySchema,
        response: { 200: PageSchema(Insight), ...errorResponses(400, 401) },
      },
      { reads: 'primary' },
    ),
    async function listInsights(request) {
      const { kind, cursor } = request.query
      const after = decodeTimeCursor(cursor)
      const ownerId = await reads.owner(request)
      if (!after && !reads.shared) await engine.generate(ownerId)
      return keysetPage(
        request.query,
        (take) => insights.page(ownerId, { kind, limit: take, after, updatedSince: updatedSince(request.query) }),
        toInsightJson,
        (r) => encodeTimeCursor(r.createdAt, r.id),
      )
    },
  )

  reads.getOne('/insights/:id', {
    tag: 'insight',
    summary: 'Get one of my insights',
    sharedSummary: "Get one of a shared owner's insights",
    ...(reads.shared ? { description: 'Without the owner’s feedback.' } : {}),
    params: IdParamsSchema,
    item: Insight,
    notFound: 'No such insight.',
    find: function getInsight(ownerId, { id }) {
      return insights.get(ownerId, id)
    },
    toJson: toInsightJson,
    // The list runs the rules (writes); one insight stays beside it on the primary.
    reads: 'primary',
  })
})

const insightRoutes: FastifyPluginAsyncTypebox = async function insightRoutes(app) {
  const insights = createInsightRepository(app.db)
  const base = { onRequest: app.authenticate }
  const common = { tags: ['insight'], security: SECURITY.bearer }
  const noSuch = () => errors.notFound('No such insight.')

  async function mustOwn(userId: string, insightId: string) {
    if (!(await insights.exists(userId, insightId))) throw noSuch()
  }

  app.put(
    '/insights/:id/feedback',
    {
      ...base,
      schema: {
        ...common,
        summary: 'Say whether an insight was helpful',
        description: 'One feedback per insight: a second PUT replaces it.',
        params: IdParamsSchema,
        body: FeedbackBodySchema,
        response: { 200: FeedbackSchema, ...errorResponses(...BODY_ERRORS, 404) },
      },
    },
    async function putFeedback(request) {
      const { id } = request.params
      const row = await app.db.transaction(async (tx) => {
        if (!(await insights.exists(request.user.sub, id, tx, true))) throw noSuch()
        return insights.putFeedback(
          request.user.sub,
          id,
          { helpful: request.body.helpful, comment: request.body.comment ?? null },
          tx,
        )
      })
      return toFeedbackJson(row)
    },
  )

  app.delete(
    '/insights/:id/feedback',
    {
      ...base,
      schema: {
        ...common,
        summary: 'Withdraw my feedback on an insight',
        params: IdParamsSchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async function deleteFeedback(request) {
      if (!(await insights.removeFeedback(request.user.sub, request.params.id))) {
        throw errors.notFound('No feedback on this insight.')
      }
      return SUCCESS
    },
  )

  app.post(
    '/insights/:id/reflections',
    {
      ...base,
      schema: {
        ...common,
        summary: 'Add a reflection to an insight',
        description: `At most ${REFLECTIONS_PER_INSIGHT} reflections per insight (\`409 too_many_reflections\`).`,
        params: IdParamsSchema,
        body: ReflectionBodySchema,
        response: { 201: ReflectionSchema, ...errorResponses(...BODY_ERRORS, 404, 409) },
      },
    },
    async function addReflection(request, reply) {
      const { id } = request.params
      const row = await app.db.transaction(async (tx) => {
        // The insight row lock serialises concurrent additions, so the bound holds.
        if (!(await insights.exists(request.user.sub, id, tx, true))) throw noSuch()
        if ((await insights.countReflections(id, tx)) >= REFLECTIONS_PER_INSIGHT) {
          throw errors.conflict(
            'too_many_reflections',
            `An insight holds at most ${REFLECTIONS_PER_INSIGHT} reflections; edit or delete one.`,
          )
        }
        return insights.addReflection(request.user.sub, id, request.body.text, tx)
      })
      return reply.status(201).send(toReflectionJson(row))
    },
  )

  app.get(
    '/insights/:id/reflections',
    {
      ...base,
      config: { oauthScope: 'insights:read' },
      schema: {
        ...common,
        summary: 'List my reflections on an insight, oldest first',
        params: IdParamsSchema,
        querystring: ReflectionListQuerySchema,
        response: { 200: PageSchema(ReflectionSchema), ...errorResponses(400, 401, 404) },
      },
    },
    async function listReflections(request) {
      const after = decodeTimeCursor(request.query.cursor)
      await mustOwn(request.user.sub, request.params.id)
      return keysetPage(
        request.query,
        (take) =>
          insights.reflections(request.user.sub, request.params.id, {
            limit: take,
            after,
            updatedSince: updatedSince(request.query),
          }),
        toReflectionJson,
        (r) => encodeTimeCursor(r.createdAt, r.id),
      )
    },
  )

  app.patch(
    '/insights/:id/reflections/:reflection_id',
    {
      ...base,
      schema: {
        ...common,
        summary: 'Edit a reflection',
        params: ReflectionParamsSchema,
        body: ReflectionBodySchema,
        response: { 200: ReflectionSchema, ...errorResponses(...BODY_ERRORS, 404) },
      },
    },
    async function editReflection(request) {
      const { id, reflection_id } = request.params
      const row = await insights.editReflection(request.user.sub, id, reflection_id, request.body.text)
      if (!row) throw errors.notFound('No such reflection.')
      return toReflectionJson(row)
    },
  )

  app.delete(
    '/insights/:id/reflections/:reflection_id',
    {
      ...base,
      schema: {
        ...common,
        summary: 'Delete a reflection',
        params: ReflectionParamsSchema,
        response: { 200: StatusSuccessSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async function deleteReflection(request) {
      const { id, reflection_id } = request.params
      if (!(await insights.removeReflection(request.user.sub, id, reflection_id))) {
        throw errors.notFound('No such reflection.')
      }
      return SUCCESS
    },
  )

  await app.register(insightReadRoutes)
}

export default insightRoutes
