import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import type { Scope } from '../../db/schema/index.ts'
import { CHANGE_TYPES, type ChangeType } from '../../plugins/changes.ts'
import { AppError, errors } from '../../plugins/errors.ts'
import { insufficientScope } from '../../plugins/oauth-bearer.ts'
import { CHANGE_TYPE_SCOPES, type OAuthScope } from '../../plugins/oauth-scopes.ts'
import { SECURITY } from '../../plugins/swagger.ts'
import { errorResponses } from '../common.ts'
import { OwnerParamsSchema } from '../owner-reads.ts'
import { createSyncRepository } from './repository.ts'
import { SyncPageSchema, SyncPositionSchema, SyncQuerySchema } from './schemas.ts'

/** The share scope that lets a viewer see each change type; profile and share changes are the owner's alone. */
export const TYPE_SCOPES: Record<ChangeType, Scope | null> = {
  measurements: 'measurement',
  checkin: 'checkin',
  day_feedback: 'day-feedback',
  activity: 'activity',
  intention: 'intention',
  insight: 'insight',
  profile: null,
  share: null,
}

const FEED_DESCRIPTION =
  "What changed in the user's data, oldest first, deletions included (`action: deleted` is a tombstone: the id, or the " +
  'measurement range, is gone). Store `next_cursor` (never null) and pass it as `cursor` next time to get only what ' +
  'changed since; `has_more` says whether to ask again at once. Measurements appear as ranges (`type`, `from`, `to`, ' +
  '`count`), one per sample type of an upload or per range delete, never one entry per sample. ' +
  "Ordering: each change takes the next `seq` of its user inside the transaction of the change, by updating the user's " +
  'position row, which stays locked until that transaction ends; so a seq is handed out only after every smaller seq of ' +
  'that user has committed (or been given back by a rollback), and a reader can never see seq N before N-1: no change is ' +
  'skipped or repeated, whichever server process wrote it. Entries are kept CHANGE_LOG_RETENTION_DAYS (30) days: a ' +
  'cursor older than that answers `410 cursor_expired`; then re-read everything with the list routes (after storing the ' +
  'cursor of `GET /v1/sync/position`) and continue from that cursor. A cursor beyond the latest change is ' +
  '`400 validation_failed`. `types` narrows the feed; an unknown type is `400 validation_failed`.'

/** The scopes that open part of the feed to a third-party token (any one of them; shares never). */
const FEED_SCOPES = [...new Set(Object.values(CHANGE_TYPE_SCOPES).filter((s): s is OAuthScope => s !== null))]

const OAUTH_DESCRIPTION =
  ' A third-party (OAuth) token reads the feed filtered to its scopes: `measurements:read` → measurements, `journal:read` → ' +
  'checkin, day_feedback, activity, intention, `insights:read` → insight, `profile:read` → profile (share changes never); ' +
  'a token with none of them, or `types` asking for a type its scopes do not cover, is `403 insufficient_scope`.'

function parseTypes(types: string | undefined): ChangeType[] {
  if (types === undefined) return [...CHANGE_TYPES]
  const asked = [...new Set(types.split(','))]
  const unknown = asked.filter((t) => !(CHANGE_TYPES as readonly string[]).includes(t))
  if (unknown.length > 0) {
    throw errors.validation([{ field: 'query.types', problem: `unknown change type: ${unknown.join(', ')}` }])
  }
  return asked as ChangeType[]
}

const syncRoutes: FastifyPluginAsyncTypebox = async function syncRoutes(app) {
  const repo = createSyncRepository(app.db)

  /**
   * The change types this caller may read of `ownerId`'s feed: every type of their own; a viewer, the
   * types of the share's scopes (404 when nothing is shared, 403 when no scope covers the feed); a
   * third-party token (always its user's own feed), the types its scopes cover.
   */
  async function allowedTypes(request: FastifyRequest, ownerId: string): Promise<ChangeType[]> {
    const { oauth } = request
    if (oauth) {
      return CHANGE_TYPES.filter((type) => {
        const scope = CHANGE_TYPE_SCOPES[type]
        return scope !== null && oauth.scopes.has(scope)
      })
    }
    if (ownerId === request.user.sub) return [...CHANGE_TYPES]
    const allowed: ChangeType[] = []
    for (const type of CHANGE_TYPES) {
      const scope = TYPE_SCOPES[type]
      if (!scope) continue
      try {
        await app.shareAccess(request, ownerId, scope)
        allowed.push(type)
      } catch (err) {
        // Nothing shared at all: the 404 a missing user gets. A missing scope only drops the type.
        if (!(err instanceof AppError) || err.statusCode !== 403) throw err
      }
    }
    if (allowed.length === 0) throw errors.forbidden("This share does not include any part of the owner's feed.")
    return allowed
  }

  async function feed(
    request: FastifyRequest,
    ownerId: string,
    query: { cursor?: string; limit: number; types?: string },
  ) {
    const allowed = await allowedTypes(request, ownerId)
    const asked = parseTypes(query.types)
    const refused = asked.filter((t) => !allowed.includes(t))
    if (query.types !== undefined && refused.length > 0) {
      if (request.oauth) {
        const needed = [...new Set(refused.map((t) => CHANGE_TYPE_SCOPES[t]).filter((x) => x !== null))]
        throw insufficientScope(
          `This app's scopes do not cover these change types: ${refused.join(', ')}.`,
          needed.join(' ') || undefined,
        )
      }
      throw errors.forbidden(`You may not read these change types: ${refused.join(', ')}.`)
    }
    const types = asked.filter((t) => allowed.includes(t))
    const after = query.cursor === undefined ? undefined : Number(query.cursor)
    const page = await repo.page(ownerId, { after, limit: query.limit + 1, types })
    if (after !== undefined && after > page.lastSeq) {
      throw errors.validation([{ field: 'query.cursor', problem: 'is not a cursor this API gave out' }])
    }
    if (after !== undefined && after < page.prunedSeq) {
      throw new AppError(
        410,
        'cursor_expired',
        'This cursor is older than the change log keeps. Do a full resync: store the cursor of GET /v1/sync/position, re-read your data with the list routes, then sync from that cursor.',
      )
    }
    const rows = page.rows.slice(0, query.limit)
    const hasMore = page.rows.length > query.limit
    const last = rows[rows.length - 1]
    // Past the last row of a full page; otherwise to the user's position in the same snapshot (the
    // types left out of this feed are then skipped for good, and nothing committed later is below it).
    const next = hasMore && last ? last.seq : Math.max(page.lastSeq, after ?? 0, page.prunedSeq)
    return {
      changes: rows.map((r) => ({
        seq: r.seq,
        type: r.type,
        action: r.action,
        ...(r.id !== null ? { id: r.id } : {}),
        ...(r.range ? { range: r.range } : {}),
        at: r.at,
      })),
      next_cursor: String(next),
      has_more: hasMore,
    }
  }

  app.get(
    '/sync',
    {
      onRequest: app.authenticate,
      config: { oauthScope: FEED_SCOPES },
      schema: {
        tags: ['sync'],
        summary: 'What changed in my data since a cursor (deletions included)',
        description: FEED_DESCRIPTION + OAUTH_DESCRIPTION,
        security: SECURITY.bearer,
        querystring: SyncQuerySchema,
        response: { 200: SyncPageSchema, ...errorResponses(400, 401, 403, 410) },
      },
    },
    async function sync(request) {
      return feed(request, request.user.sub, request.query)
    },
  )

  app.get(
    '/sync/position',
    {
      onRequest: app.authenticate,
      config: { oauthScope: FEED_SCOPES },
      schema: {
        tags: ['sync'],
        summary: 'The cursor of my latest change',
        description:
          'For a client that starts from scratch (or got `410 cursor_expired`): store this cursor first, then read ' +
          'everything with the list routes, then call `GET /v1/sync` with it (changes made during the re-read come again; ' +
          'applying them twice is harmless). A third-party (OAuth) token needs one of the scopes that open the feed.',
        security: SECURITY.bearer,
        response: { 200: SyncPositionSchema, ...errorResponses(401, 403) },
      },
    },
    async function position(request) {
      const page = await repo.page(request.user.sub, { after: undefined, limit: 0, types: [] })
      return { cursor: String(page.lastSeq) }
    },
  )

  app.get(
    '/shared/:owner_id/sync',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['shared'],
        summary: "What changed in a shared owner's data since a cursor",
        description:
          "The owner's feed as `GET /v1/sync` answers it, narrowed to the change types the share's scopes cover " +
          '(measurement, checkin, day-feedback, activity, intention, insight; profile and share changes never). ' +
          '`404 not_found` when the owner shares nothing with the caller, `403 forbidden` when the share covers no type of ' +
          'the feed or `types` asks for one it does not cover.',
        security: SECURITY.bearer,
        params: OwnerParamsSchema,
        querystring: SyncQuerySchema,
        response: { 200: SyncPageSchema, ...errorResponses(400, 401, 403, 404, 410) },
      },
    },
    async function sharedSync(request) {
      return feed(request, request.params.owner_id, request.query)
    },
  )
}

export default syncRoutes
