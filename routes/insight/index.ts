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
import { toPage } from '../journal/paging.ts'
import { createInsightEngine } from './engine.ts'
import { createInsightRepository, toFeedbackJson, toInsightJson, toReflectionJson } from './repository.ts'
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
} from './schemas.ts'

const BODY_ERRORS = [400, 401, 413, 415] as const

const insightRoutes: FastifyPluginAsyncTypebox = async function insightRoutes(app) {
  const insights = createInsightRepository(app.db)
  const engine = createInsightEngine(app.db)
  const base = { onRequest: app.authenticate }
  const common = { tags: ['insight'], security: SECURITY.bearer }
  const noSuch = () => errors.notFound('No such insight.')

  async function mustOwn(userId: string, insightId: string) {
    if (!(await insights.exists(userId, insightId))) throw noSuch()
  }

  app.get(
    '/insights',
    {
      ...base,
      schema: {
        ...common,
        summary: 'List my insights, newest first',
        description:
          'Reading the first page (no cursor) first runs the rules on my data; a rule says one thing once per period, so reading again adds nothing new unless the data changed. Cursor-paginated; `kind` filters by rule.',
        querystring: InsightListQuerySchema,
        response: { 200: PageSchema(InsightSchema), ...errorResponses(400, 401) },
      },
    },
    async function listInsights(request) {
      const { kind, limit = 50, cursor } = request.query
      const after = decodeTimeCursor(cursor)
      if (!after) await engine.generate(request.user.sub)
      const rows = await insights.page(request.user.sub, { kind, limit: limit + 1, after })
      return toPage(rows, limit, toInsightJson, (r) => encodeTimeCursor(r.createdAt, r.id))
    },
  )

  app.get(
    '/insights/:id',
    {
      ...base,
      schema: {
        ...common,
        summary: 'Get one of my insights',
        params: IdParamsSchema,
        response: { 200: InsightSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async function getInsight(request) {
      const row = await insights.get(request.user.sub, request.params.id)
      if (!row) throw noSuch()
      return toInsightJson(row)
    },
  )

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
      schema: {
        ...common,
        summary: 'List my reflections on an insight, oldest first',
        params: IdParamsSchema,
        querystring: ReflectionListQuerySchema,
        response: { 200: PageSchema(ReflectionSchema), ...errorResponses(400, 401, 404) },
      },
    },
    async function listReflections(request) {
      const { limit = 50, cursor } = request.query
      const after = decodeTimeCursor(cursor)
      await mustOwn(request.user.sub, request.params.id)
      const rows = await insights.reflections(request.user.sub, request.params.id, { limit: limit + 1, after })
      return toPage(rows, limit, toReflectionJson, (r) => encodeTimeCursor(r.createdAt, r.id))
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
}

export default insightRoutes
