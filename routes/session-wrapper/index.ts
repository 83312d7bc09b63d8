import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
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
import { isUniqueViolation } from '../journal/db-errors.ts'
import { parseTimeRange } from '../journal/paging.ts'
import { updatedSince } from '../journal/schemas.ts'
import { refuseFuture } from '../journal/zone.ts'
import { type ReadRoutesOptions, ownerReadRoutes } from '../owner-reads.ts'
import type { SessionFamily } from './family.ts'
import {
  ONE_RUNNING_CONSTRAINT,
  type SessionChanges,
  type SessionRow,
  createJournalSessionRepository,
  toSessionDetailJson,
  toSessionJson,
} from './repository.ts'
import { type SessionInput, sessionSchemas } from './schemas.ts'

export type { SessionFamily } from './family.ts'

const BODY_ERRORS = [400, 401, 413, 415] as const

/** The family's own fields of a body, by column. */
function extraColumns(f: SessionFamily, body: SessionInput): SessionChanges {
  const out: Record<string, unknown> = {}
  for (const x of f.extraFields) if (body[x.name] !== undefined) out[x.column] = body[x.name]
  return out as SessionChanges
}

function checkOrder(startedAt: Date, endedAt: Date | null) {
  if (endedAt && endedAt < startedAt)
    throw errors.validation([{ field: 'ended_at', problem: 'must not be before started_at' }])
}

/**
 * The family's read-only routes: the caller's own sessions, or (`shared`) a shared owner's within the
 * family's scope.
 */
export function sessionReadRoutes(f: SessionFamily): FastifyPluginAsyncTypebox<ReadRoutesOptions> {
  const S = sessionSchemas(f)
  const noSuch = () => errors.notFound(`No such ${f.noun}.`)

  return ownerReadRoutes(f.family, async function sessionReadRoutes(app, reads) {
    const sessions = createJournalSessionRepository(app.db, f.family)
    const json = (row: SessionRow) => toSessionJson(f, row)

    app.get(
      f.path,
      reads.route({
        tag: f.tag,
        summary: `List my ${f.plural}, newest start first`,
        sharedSummary: `List a shared owner's ${f.plural}, newest start first`,
        description: 'Optionally those started within `[from, to)`, of one kind, running or not. Cursor-paginated.',
        querystring: S.ListQuery,
        response: { 200: PageSchema(S.Session), ...errorResponses(400, 401) },
      }),
      async function listSessions(request) {
        const q = request.query
        const range = parseTimeRange(q.from, q.to)
        const after = decodeTimeCursor(q.cursor)
        const ownerId = await reads.owner(request)
        return keysetPage(
          q,
          (take) =>
            sessions.page(ownerId, {
              ...range,
              kind: q.kind,
              running: q.running,
              limit: take,
              after,
              updatedSince: updatedSince(q),
            }),
          json,
          (r) => encodeTimeCursor(r.startedAt, r.id),
        )
      },
    )

    app.get(
      `${f.path}/:id`,
      reads.route({
        tag: f.tag,
        summary: `Get one of my ${f.plural}, with a summary of its measurements`,
        sharedSummary: `Get one of a shared owner's ${f.plural}, with a summary of its measurements`,
        description:
          'The summary covers the owner’s measurements in [started_at, ended_at), or up to now while running. On a shared read it is null unless the share also includes the `measurement` scope.',
        params: IdParamsSchema,
        response: { 200: S.SessionDetail, ...errorResponses(400, 401, 404) },
      }),
      async function getSession(request) {
        const ownerId = await reads.owner(request)
        // The summary is measurement data: a viewer sees it only with that scope too.
        if (await reads.alsoReadable(request, 'measurement')) {
          const row = await sessions.getWithSummary(ownerId, request.params.id)
          if (!row) throw noSuch()
          return toSessionDetailJson(f, row)
        }
        const row = await sessions.get(ownerId, request.params.id)
        if (!row) throw noSuch()
        return { ...json(row), summary: null }
      },
    )
  })
}

/**
 * The "sessions wrapper" of the reference, written once: a route plugin for one family of sessions
 * (activities, intentions …). Register it once per family with that family's config.
 */
export function sessionWrapperRoutes(f: SessionFamily): FastifyPluginAsyncTypebox {
  const S = sessionSchemas(f)
  const noSuch = () => errors.notFound(`No such ${f.noun}.`)
  const running = () =>
    errors.conflict('session_running', `Another ${f.noun} is still running; end it before starting a new one.`)

  return async function sessionRoutes(app) {
    const sessions = createJournalSessionRepository(app.db, f.family)
    const base = { onRequest: app.authenticate }
    const common = { tags: [f.tag], security: SECURITY.bearer }
    const json = (row: SessionRow) => toSessionJson(f, row)

    /** Maps the one-running-session index to its documented 409. */
    async function guardRunning<T>(work: () => Promise<T>): Promise<T> {
      try {
        return await work()
      } catch (err) {
        if (isUniqueViolation(err, ONE_RUNNING_CONSTRAINT)) throw running()
        throw err
      }
    }

    app.post(
      f.path,
      {
        ...base,
        schema: {
          ...common,
          summary: `Start an ${f.noun}`,
          description: `${f.about} At most one ${f.noun} runs at a time (ended_at null): starting a second one answers \`409 session_running\`. Giving ended_at records a finished ${f.noun} after the fact, which is allowed while another runs.`,
          body: S.Start,
          response: { 201: S.Session, ...errorResponses(...BODY_ERRORS, 409) },
        },
      },
      async function startSession(request, reply) {
        const body = request.body as SessionInput
        const startedAt = body.started_at ? instantDate(body.started_at) : new Date()
        const endedAt = body.ended_at ? instantDate(body.ended_at) : null
        refuseFuture('started_at', startedAt)
        refuseFuture('ended_at', endedAt)
        checkOrder(startedAt, endedAt)
        const row = await guardRunning(() =>
          app.db.transaction(async (tx) => {
            const created = await sessions.create(
              request.user.sub,
              { kind: body.kind as string, startedAt, endedAt, notes: body.notes ?? null, ...extraColumns(f, body) },
              tx,
            )
            await app.changes.record(tx, request.user.sub, { type: f.family, action: 'created', id: created.id })
            return created
          }),
        )
        return reply.status(201).send(json(row))
      },
    )

    app.post(
      `${f.path}/:id/end`,
      {
        ...base,
        // "End it now" needs no body: an absent one is the empty object.
        preValidation: async function emptyBodyIsEmptyObject(request) {
          request.body ??= {}
        },
        schema: {
          ...common,
          summary: `End a running ${f.noun}`,
          description: `The body is optional; ended_at defaults to now. An ${f.noun} already ended answers \`409 session_ended\` (edit it with PATCH instead).`,
          params: IdParamsSchema,
          body: S.End,
          response: { 200: S.Session, ...errorResponses(...BODY_ERRORS, 404, 409) },
        },
      },
      async function endSession(request) {
        const body = request.body as SessionInput
        const requested = body.ended_at ? instantDate(body.ended_at) : null
        refuseFuture('ended_at', requested)
        const row = await app.db.transaction(async (tx) => {
          const current = await sessions.getForUpdate(request.user.sub, request.params.id, tx)
          if (!current) throw noSuch()
          if (current.endedAt) throw errors.conflict('session_ended', `This ${f.noun} has already ended.`)
          // Ending "now" a session whose start lies a little ahead (clock skew) ends it at its start.
          const endedAt = requested ?? new Date(Math.max(Date.now(), current.startedAt.getTime()))
          checkOrder(current.startedAt, endedAt)
          const changes: SessionChanges = { endedAt, ...extraColumns(f, body) }
          if (body.notes !== undefined) changes.notes = body.notes
          const ended = await sessions.update(request.user.sub, request.params.id, changes, tx)
          if (ended) await app.changes.record(tx, request.user.sub, { type: f.family, action: 'updated', id: ended.id })
          return ended
        })
        if (!row) throw noSuch()
        return json(row)
      },
    )

    app.patch(
      `${f.path}/:id`,
      {
        ...base,
        schema: {
          ...common,
          summary: `Edit an ${f.noun}`,
          description: `Only the fields given change. ended_at null makes it running again (\`409 session_running\` if another ${f.noun} runs). ended_at must not be before started_at; neither may be in the future.`,
          params: IdParamsSchema,
          body: S.Patch,
          response: { 200: S.Session, ...errorResponses(...BODY_ERRORS, 404, 409) },
        },
      },
      async function editSession(request) {
        const body = request.body as SessionInput
        const changes: SessionChanges = extraColumns(f, body)
        if (body.kind !== undefined) changes.kind = body.kind
        if (body.notes !== undefined) changes.notes = body.notes
        if (body.started_at !== undefined) changes.startedAt = instantDate(body.started_at)
        if (body.ended_at !== undefined) changes.endedAt = body.ended_at === null ? null : instantDate(body.ended_at)
        refuseFuture('started_at', changes.startedAt)
        refuseFuture('ended_at', changes.endedAt)
        const row = await guardRunning(() =>
          app.db.transaction(async (tx) => {
            const current = await sessions.getForUpdate(request.user.sub, request.params.id, tx)
            if (!current) throw noSuch()
            checkOrder(
              changes.startedAt ?? current.startedAt,
              changes.endedAt === undefined ? current.endedAt : changes.endedAt,
            )
            const updated = await sessions.update(request.user.sub, request.params.id, changes, tx)
            if (updated) {
              const starts = [current.startedAt, updated.startedAt].sort((x, y) => x.getTime() - y.getTime())
              await app.dataChanges.changed(tx, {
                userId: request.user.sub,
                source: f.family,
                from: starts[0],
                to: starts[1],
              })
              await app.changes.record(tx, request.user.sub, { type: f.family, action: 'updated', id: updated.id })
            }
            return updated
          }),
        )
        if (!row) throw noSuch()
        return json(row)
      },
    )

    app.delete(
      `${f.path}/:id`,
      {
        ...base,
        schema: {
          ...common,
          summary: `Delete an ${f.noun}`,
          description: `Insights computed from ${f.plural} of its day (streaks) are withdrawn at once, for viewers too, until the rules compute them again from the remaining data.`,
          params: IdParamsSchema,
          response: { 200: StatusSuccessSchema, ...errorResponses(400, 401, 404) },
        },
      },
      async function deleteSession(request) {
        const removed = await app.db.transaction(async (tx) => {
          const current = await sessions.getForUpdate(request.user.sub, request.params.id, tx)
          if (!current || !(await sessions.remove(request.user.sub, request.params.id, tx))) return false
          const at = current.startedAt
          await app.dataChanges.changed(tx, { userId: request.user.sub, source: f.family, from: at, to: at })
          await app.changes.record(tx, request.user.sub, { type: f.family, action: 'deleted', id: current.id })
          return true
        })
        if (!removed) throw noSuch()
        return SUCCESS
      },
    )

    await app.register(sessionReadRoutes(f))
  }
}
