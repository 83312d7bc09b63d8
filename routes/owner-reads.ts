import { type Static, type TObject, type TSchema, Type } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Scope } from '../db/schema/index.ts'
import { SECURITY } from '../plugins/swagger.ts'
import { errorResponses } from './common.ts'

/**
 * Options of a domain's read-only route plugin. It is registered twice (see app.ts): under `/v1` for the
 * caller's own data, and under `/v1/shared/:owner_id` with `shared: true` for the data of someone who
 * shares it with the caller.
 */
export interface ReadRoutesOptions {
  shared?: boolean
}

export const OwnerParamsSchema = Type.Object(
  { owner_id: Type.String({ format: 'uuid', description: 'The user whose data is read.' }) },
  { additionalProperties: false },
)

/** What a read route declares; `sharedSummary` replaces `summary` on the shared copy. */
export interface ReadRouteSchema {
  tag: string
  summary: string
  sharedSummary: string
  description?: string
  params?: TObject
  querystring?: TSchema
  response: Record<number, TSchema>
}

export type OwnerReads = ReturnType<typeof ownerReads>

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The owner-or-viewer access of a domain's read routes, for the instance it is called on: on the
     * shared copy a hook checks the share and scope before the handler runs.
     */
    ownerReads(this: FastifyInstance, options: ReadRoutesOptions, scope: Scope): OwnerReads
  }
}

/**
 * The one difference between a domain's own read and a viewer's read of the same route: whose id the
 * handler passes to the repository. The handler and the query are the same; on the shared copy the
 * owner id comes from the share check (run by a preHandler hook, after validation and authentication)
 * and the schema gains `owner_id`, the `shared` tag and the 403/404 of that check.
 */
function ownerReads(app: FastifyInstance, options: ReadRoutesOptions, scope: Scope) {
  const shared = options.shared === true
  const ownerFor = app.shareAccess
  const owners = new WeakMap<FastifyRequest, string>()
  const sharedNote =
    `Read-only: answers what the owner gets from the same path without \`/shared/{owner_id}\`, when the owner shares the \`${scope}\` scope with the caller ` +
    '(or both are members of one peer group). `404 not_found` when the owner shares nothing with the caller, `403 forbidden` when the share lacks the scope. With read replicas (DATABASE_REPLICA_URLS) the answer may trail the latest changes of the owner by up to REPLICA_MAX_LAG_S; a caller always reads their own writes.'

  if (shared) {
    app.addHook<{ Params: Static<typeof OwnerParamsSchema> }>('preHandler', async function checkShare(request) {
      owners.set(request, await ownerFor(request, request.params.owner_id, scope))
    })
  }

  return {
    shared,

    /** The id whose data this request reads: the caller's own, or the shared owner's (scope checked). */
    async owner(request: FastifyRequest): Promise<string> {
      return owners.get(request) ?? request.user.sub
    },

    /**
     * Whether the caller may also see another scope of the same owner (a part of an answer that
     * belongs to another domain, e.g. the measurement summary of an activity). Always true on own data.
     */
    async alsoReadable(request: FastifyRequest, other: Scope): Promise<boolean> {
      const ownerId = owners.get(request)
      if (ownerId === undefined) return true
      return ownerFor(request, ownerId, other).then(
        () => true,
        () => false,
      )
    },

    /**
     * The route schema. Its static type stays the owner-side one (handlers never read `owner_id`
     * themselves, only the hook does), so one handler serves both registrations.
     */
    schema<S extends ReadRouteSchema>(s: S) {
      const { tag, sharedSummary, ...own } = s
      const base = { ...own, tags: [tag], security: SECURITY.bearer }
      if (!shared) return base as Omit<S, 'tag' | 'sharedSummary'> & typeof base
      return {
        ...base,
        tags: ['shared'],
        summary: sharedSummary,
        description: s.description ? `${sharedNote} ${s.description}` : sharedNote,
        params: s.params
          ? Type.Composite([OwnerParamsSchema, s.params], { additionalProperties: false })
          : OwnerParamsSchema,
        response: { ...s.response, ...errorResponses(403, 404) },
      } as unknown as Omit<S, 'tag' | 'sharedSummary'> & typeof base
    },
  }
}

/** The mechanism as a named decorator that the data domains use; it depends on the sharing domain's check. */
export default fp(
  async function ownerReadsPlugin(app) {
    app.decorate('ownerReads', function ownerReadsOf(this: FastifyInstance, options: ReadRoutesOptions, scope: Scope) {
      return ownerReads(this, options, scope)
    })
  },
  { name: 'owner-reads', dependencies: ['auth', 'share-access'] },
)
