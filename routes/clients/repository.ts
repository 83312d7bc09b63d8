import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { and, desc, eq, isNull, sql } from 'drizzle-orm'
import fp from 'fastify-plugin'
import type { Db, DbOrTx } from '../../db/client.ts'
import { type KeysetAfter, keysetAfter } from '../../db/keyset.ts'
import { clientApps } from '../../db/schema/index.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The client apps table, for the client-token plugin's `x-auth-token` check and the admin routes. */
    clientRepository: ClientAppRepository
  }
}

/** The x-auth-token header value: base64("<secret>+<clientId>"), as the NOWATCH reference defines it. */
export function encodeClientToken(secret: string, clientId: string): string {
  return Buffer.from(`${secret}+${clientId}`, 'utf8').toString('base64')
}

export function decodeClientToken(header: string): { secret: string; clientId: string } | null {
  if (header.length > 512) return null
  const raw = Buffer.from(header, 'base64').toString('utf8')
  const plus = raw.lastIndexOf('+')
  if (plus <= 0) return null
  const clientId = raw.slice(plus + 1)
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(clientId)) return null
  return { secret: raw.slice(0, plus), clientId: clientId.toLowerCase() }
}

// Client secrets are 256 random bits, so a fast hash is enough (no password stretching needed).
function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex')
}

const DUMMY_HASH = hashSecret('not-a-secret')

export interface IssuedClient {
  client_id: string
  name: string
  secret: string
  x_auth_token: string
  created: string
}

export function createClientAppRepository(db: Db) {
  return {
    async create(name: string, tx?: DbOrTx): Promise<IssuedClient> {
      const secret = randomBytes(32).toString('base64url')
      const [row] = await (tx ?? db)
        .insert(clientApps)
        .values({ name, secretHash: hashSecret(secret) })
        .returning()
      return {
        client_id: row.id,
        name: row.name,
        secret,
        x_auth_token: encodeClientToken(secret, row.id),
        created: row.createdAt.toISOString(),
      }
    },

    /**
     * Checks a presented secret in constant time against the current secret and, until its overlap ends,
     * the one before the last rotation; revoked or unknown clients fail the same way.
     */
    async verify(clientId: string, secret: string) {
      const [row] = await db.select().from(clientApps).where(eq(clientApps.id, clientId)).limit(1)
      const presented = Buffer.from(hashSecret(secret), 'hex')
      const current = timingSafeEqual(Buffer.from(row?.secretHash ?? DUMMY_HASH, 'hex'), presented)
      const previous = timingSafeEqual(Buffer.from(row?.previousSecretHash ?? DUMMY_HASH, 'hex'), presented)
      const previousValid =
        previous && !!row?.previousSecretExpiresAt && row.previousSecretExpiresAt.getTime() > Date.now()
      if (!row || !(current || previousValid) || row.revokedAt) return null
      return { id: row.id, name: row.name }
    },

    /** The client of an `x-auth-token` header value, or null when it is malformed, unknown or revoked. */
    async verifyToken(header: string) {
      const decoded = decodeClientToken(header)
      return decoded ? this.verify(decoded.clientId, decoded.secret) : null
    },

    /**
     * A new secret; the current one keeps working for `overlapS` seconds (0: stops at once). A secret older
     * than the current one stops at once: two rotations in a row leave only the last two secrets.
     */
    async rotate(clientId: string, overlapS: number, tx?: DbOrTx): Promise<IssuedClient | null> {
      const secret = randomBytes(32).toString('base64url')
      const [row] = await (tx ?? db)
        .update(clientApps)
        .set({
          secretHash: hashSecret(secret),
          previousSecretHash: overlapS > 0 ? clientApps.secretHash : null,
          previousSecretExpiresAt: overlapS > 0 ? new Date(Date.now() + overlapS * 1000) : null,
          rotatedAt: new Date(),
        })
        .where(and(eq(clientApps.id, clientId), isNull(clientApps.revokedAt)))
        .returning()
      if (!row) return null
      return {
        client_id: row.id,
        name: row.name,
        secret,
        x_auth_token: encodeClientToken(secret, row.id),
        created: row.createdAt.toISOString(),
      }
    },

    async revoke(clientId: string, tx?: DbOrTx) {
      const [row] = await (tx ?? db)
        .update(clientApps)
        .set({ revokedAt: sql`coalesce(${clientApps.revokedAt}, now())` })
        .where(eq(clientApps.id, clientId))
        .returning()
      return row ?? null
    },

    async get(clientId: string) {
      const [row] = await db.select().from(clientApps).where(eq(clientApps.id, clientId)).limit(1)
      return row ?? null
    },

    /** Newest first, keyset-paginated on (created_at, id). */
    async list(limit: number, after?: KeysetAfter) {
      return db
        .select()
        .from(clientApps)
        .where(keysetAfter(clientApps.createdAt, clientApps.id, after))
        .orderBy(desc(clientApps.createdAt), desc(clientApps.id))
        .limit(limit)
    },

    async count() {
      const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(clientApps)
      return row.n
    },
  }
}

export type ClientAppRepository = ReturnType<typeof createClientAppRepository>

/** The repository as a named decorator, so the client-token plugin can depend on it. */
export default fp(
  async function clientRepositoryPlugin(app) {
    app.decorate('clientRepository', createClientAppRepository(app.db))
  },
  { name: 'client-repository', dependencies: ['db'] },
)
