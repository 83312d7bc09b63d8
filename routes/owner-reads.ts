import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { type Static, type TObject, type TSchema, Type } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Scope } from '../db/schema/index.ts'
import { errors } from '../plugins/errors.ts'
import { documentOAuthScope } from '../plugins/oauth-bearer.ts'
import type { OAuthScope } from '../plugins/oauth-scopes.ts'
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

/** Where a read route's plain reads go (plugins/read-routing.ts). */
type ReadsFrom = 'replica' | 'primary'

export type OwnerReads = ReturnType<typeof ownerReads>

/** A get-one read route: one row of the owner's, found by the route's params, or `404 not_found`. */
export interface GetOneRoute<P extends TObject, I extends TSchema, R>
  extends Omit<ReadRouteSchema, 'params' | 'querystring' | 'response'> {
  params: P
  /** The schema of the row's JSON (the 200 answer). */
  item: I
  /** The message of the 404 when `find` finds nothing. */
  notFound: string
  /** Finds the row among the owner's (a named function: it names the handler in stack traces). */
  find: (ownerId: string, params: Static<P>) => Promise<R | null | undefined>
  toJson: (row: R) => Static<I>
  /** Where its reads go: a replica by default (plugins/read-routing.ts). */
  reads?: ReadsFrom
}

/** The OAuth scope that reads each domain's own data (by the route's tag). */
const OAUTH_READ_SCOPES: Record<string, OAuthScope> = {
  measurement: 'measurements:read',
  statistics: 'statistics:read',
  sleep: 'sleep:read',
  checkin: 'journal:read',
  'day-feedback': 'journal:read',
  activity: 'journal:read',
  intention: 'journal:read',
  insight: 'insights:read',
}

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

  // Third-party apps (OAuth) read the caller's own data with the read scope of the route's domain (its
  // tag); never the shared copies, which are the viewer's access to someone else's data.
  if (!shared) {
    app.addHook('onRoute', function declareReadScope(route) {
      const tag = (route.schema as { tags?: string[] } | undefined)?.tags?.[0]
      const oauthScope = tag ? OAUTH_READ_SCOPES[tag] : undefined
      if (!oauthScope || route.config?.oauthScope) return
      route.config = { ...route.config, oauthScope }
      documentOAuthScope(route)
    })
  }

  if (shared) {
    app.addHook<{ Params: Static<typeof OwnerParamsSchema> }>('preHandler', async function checkShare(request) {
      owners.set(request, await ownerFor(request, request.params.owner_id, scope))
    })
  }

  /**
   * The route schema. Its static type stays the owner-side one (handlers never read `owner_id`
   * themselves, only the hook does), so one handler serves both registrations.
   */
  function schema<S extends ReadRouteSchema>(s: S) {
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

    schema,

    /**
     * The options of a read route: authenticated, then (on the shared copy) share-checked, with `schema(s)`.
     * Its plain reads go to a replica when there is one (plugins/read-routing.ts); a handler that also
     * writes passes `{ reads: 'primary' }`.
     */
    route<S extends ReadRouteSchema>(s: S, { reads = 'replica' }: { reads?: ReadsFrom } = {}) {
      return { onRequest: app.authenticate, config: { reads }, schema: schema(s) }
    },

    /** Registers the usual get-one route: the owner's row found by the params, as JSON, or `404 not_found`. */
    getOne<P extends TObject, I extends TSchema, R>(path: string, r: GetOneRoute<P, I, R>) {
      const { params, item, notFound, find, toJson, reads = 'replica', ...rest } = r
      app.get(
        path,
        {
          onRequest: app.authenticate,
          config: { reads },
          schema: schema({ ...rest, params, response: { 200: item, ...errorResponses(400, 401, 404) } }),
        },
        async function getOne(request) {
          // Validated against `params` (TypeScript cannot resolve the generic schema's static type here).
          const row = await find(owners.get(request) ?? request.user.sub, request.params as Static<P>)
          if (!row) throw errors.notFound(notFound)
          return toJson(row)
        },
      )
    },
  }
}

/**
 * A domain's read-only route plugin, written once: `routes(app, reads)` declares the routes with the
 * owner-or-viewer access of `scope` (see ReadRoutesOptions for the two registrations). The plugin keeps
 * the name of `routes`, so the plugin graph still shows which domain it is.
 */
export function ownerReadRoutes(
  scope: Scope,
  routes: (app: Parameters<FastifyPluginAsyncTypebox>[0], reads: OwnerReads) => Promise<void>,
): FastifyPluginAsyncTypebox<ReadRoutesOptions> {
  const plugin: FastifyPluginAsyncTypebox<ReadRoutesOptions> = async (app, options) => {
    await routes(app, app.ownerReads(options, scope))
  }
  return Object.defineProperty(plugin, 'name', { value: routes.name })
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
