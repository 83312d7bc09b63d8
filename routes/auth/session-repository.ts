import { and, asc, desc, eq, gt, isNull, ne, sql } from 'drizzle-orm'
import fp from 'fastify-plugin'
import type { Db, DbOrTx } from '../../db/client.ts'
import { keysetAfter } from '../../db/keyset.ts'
import { clientApps, sessions, users } from '../../db/schema/index.ts'
import type { SessionState } from '../../plugins/auth.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The sessions table, for the auth plugin's bearer check and the routes that list or end sessions. */
    sessionRepository: SessionRepository
  }
}

const active = () => and(isNull(sessions.revokedAt), gt(sessions.expiresAt, sql`now()`))

export function createSessionRepository(db: Db) {
  return {
    /**
     * What the bearer check needs: is this session alive, and whose is it. Looked up by the user the token
     * names (its `sub`) and the session id, so on Citus it is one shard's primary-key lookup.
     */
    async state(userId: string, sessionId: string): Promise<SessionState | null> {
      const [row] = await db
        .select({
          userId: sessions.userId,
          sessionRole: sessions.role,
          userRole: users.role,
          revokedAt: sessions.revokedAt,
          expiresAt: sessions.expiresAt,
          disabledAt: users.disabledAt,
          emailVerifiedAt: users.emailVerifiedAt,
          createdAt: users.createdAt,
          clientId: sessions.clientId,
          clientRevokedAt: clientApps.revokedAt,
        })
        .from(sessions)
        .innerJoin(users, eq(users.id, sessions.userId))
        .leftJoin(clientApps, eq(clientApps.id, sessions.clientId))
        .where(and(eq(sessions.userId, userId), eq(sessions.id, sessionId)))
        .limit(1)
      if (!row) return null
      return {
        sessionId,
        userId: row.userId,
        role: row.sessionRole === 'admin' && row.userRole === 'admin' ? 'admin' : 'user',
        // A session lives only as long as the client app that opened it (a login racing the revocation too).
        active:
          !row.revokedAt &&
          !row.disabledAt &&
          !(row.clientId && row.clientRevokedAt) &&
          row.expiresAt.getTime() > Date.now(),
        unverifiedSince: row.emailVerifiedAt ? null : row.createdAt,
      }
    },

    async create(
      values: {
        userId: string
        clientId: string | null
        role: 'user' | 'admin'
        refreshJti: string
        ip: string
        userAgent: string | null
        expiresAt: Date
        authMethod?: 'password' | 'passkey' | 'mfa'
        amr?: string[]
        aal?: number
      },
      tx?: DbOrTx,
    ) {
      const [row] = await (tx ?? db).insert(sessions).values(values).returning()
      return row
    },

    async get(userId: string, sessionId: string, tx?: DbOrTx) {
      const [row] = await (tx ?? db)
        .select()
        .from(sessions)
        .where(and(eq(sessions.userId, userId), eq(sessions.id, sessionId)))
        .limit(1)
      return row ?? null
    },

    /** Locks the session row for a refresh rotation, so two rotations of one token cannot both win. */
    async getForUpdate(userId: string, sessionId: string, tx: DbOrTx) {
      const [row] = await tx
        .select()
        .from(sessions)
        .where(and(eq(sessions.userId, userId), eq(sessions.id, sessionId)))
        .for('update')
        .limit(1)
      return row ?? null
    },

    async rotate(
      userId: string,
      sessionId: string,
      previousJti: string,
      nextJti: string,
      expiresAt: Date,
      rotatedAt: Date,
      tx?: DbOrTx,
    ) {
      await (tx ?? db)
        .update(sessions)
        .set({ refreshJti: nextJti, previousRefreshJti: previousJti, rotatedAt, lastUsedAt: new Date(), expiresAt })
        .where(and(eq(sessions.userId, userId), eq(sessions.id, sessionId)))
    },

    async touch(userId: string, sessionId: string) {
      await db
        .update(sessions)
        .set({ lastUsedAt: new Date() })
        .where(and(eq(sessions.userId, userId), eq(sessions.id, sessionId)))
    },

    async countActive(userId: string, tx?: DbOrTx): Promise<number> {
      const [row] = await (tx ?? db)
        .select({ n: sql<number>`count(*)::int` })
        .from(sessions)
        .where(and(eq(sessions.userId, userId), active()))
      return row.n
    },

    /**
     * A page of active sessions, newest login first, keyset on (created_at, id): unlike last_used_at
     * these never change, so paging has no gaps or repeats while the sessions are in use.
     */
    async pageActive(userId: string, limit: number, after?: { at: Date; id: string }) {
      return db
        .select({
          id: sessions.id,
          clientId: sessions.clientId,
          clientName: clientApps.name,
          ip: sessions.ip,
          userAgent: sessions.userAgent,
          createdAt: sessions.createdAt,
          lastUsedAt: sessions.lastUsedAt,
          expiresAt: sessions.expiresAt,
          authMethod: sessions.authMethod,
        })
        .from(sessions)
        .leftJoin(clientApps, eq(clientApps.id, sessions.clientId))
        .where(and(eq(sessions.userId, userId), active(), keysetAfter(sessions.createdAt, sessions.id, after)))
        .orderBy(desc(sessions.createdAt), desc(sessions.id))
        .limit(limit)
    },

    /** Every session of a user, ended ones too, oldest first in batches (account export). */
    async *exportRows(userId: string, batch = 1000) {
      let after: { at: Date; id: string } | undefined
      for (;;) {
        const rows = await db
          .select()
          .from(sessions)
          .where(and(eq(sessions.userId, userId), keysetAfter(sessions.createdAt, sessions.id, after, 'asc')))
          .orderBy(asc(sessions.createdAt), asc(sessions.id))
          .limit(batch)
        for (const r of rows) {
          // The refresh token ids are credentials' fingerprints, not the user's data.
          yield {
            id: r.id,
            client_id: r.clientId,
            ip: r.ip,
            user_agent: r.userAgent,
            created: r.createdAt.toISOString(),
            last_used: r.lastUsedAt.toISOString(),
            expires: r.expiresAt.toISOString(),
            revoked: r.revokedAt?.toISOString() ?? null,
            revoked_reason: r.revokedReason,
          }
        }
        const last = rows.at(-1)
        if (!last || rows.length < batch) return
        after = { at: last.createdAt, id: last.id }
      }
    },

    /** A re-authentication: the session's tokens claim this method and time from now on. */
    async reauthenticated(
      userId: string,
      sessionId: string,
      auth: { amr: string[]; aal: number; authTime: Date },
      previousJti: string,
      nextJti: string,
      tx?: DbOrTx,
    ) {
      const rows = await (tx ?? db)
        .update(sessions)
        .set({
          amr: auth.amr,
          aal: auth.aal,
          authTime: auth.authTime,
          refreshJti: nextJti,
          previousRefreshJti: previousJti,
          rotatedAt: new Date(),
          lastUsedAt: new Date(),
        })
        .where(and(eq(sessions.userId, userId), eq(sessions.id, sessionId), active()))
        .returning({ id: sessions.id })
      return rows.length > 0
    },

    /** Revokes one session of this user; false when it is not theirs or already ended. */
    async revoke(userId: string, sessionId: string, reason: string, tx?: DbOrTx): Promise<boolean> {
      const rows = await (tx ?? db)
        .update(sessions)
        .set({ revokedAt: new Date(), revokedReason: reason })
        .where(and(eq(sessions.userId, userId), eq(sessions.id, sessionId), isNull(sessions.revokedAt)))
        .returning({ id: sessions.id })
      return rows.length > 0
    },

    /**
     * Ends every live session opened through a client app (the app was revoked); returns the sessions ended.
     * Across users (admin, rare): a multi-shard update on Citus (docs/scaling.md).
     */
    async revokeByClient(
      clientId: string,
      reason: string,
      tx?: DbOrTx,
    ): Promise<Array<{ id: string; userId: string }>> {
      return (tx ?? db)
        .update(sessions)
        .set({ revokedAt: new Date(), revokedReason: reason })
        .where(and(eq(sessions.clientId, clientId), isNull(sessions.revokedAt)))
        .returning({ id: sessions.id, userId: sessions.userId })
    },

    /** Revokes every session of a user (optionally all but one); returns the ids ended. */
    async revokeAll(userId: string, reason: string, exceptSessionId?: string, tx?: DbOrTx): Promise<string[]> {
      const rows = await (tx ?? db)
        .update(sessions)
        .set({ revokedAt: new Date(), revokedReason: reason })
        .where(
          and(
            eq(sessions.userId, userId),
            isNull(sessions.revokedAt),
            exceptSessionId ? ne(sessions.id, exceptSessionId) : undefined,
          ),
        )
        .returning({ id: sessions.id })
      return rows.map((r) => r.id)
    },

    /** Oldest-first sessions beyond the limit, for the evict_oldest policy. */
    async leastRecentlyUsed(userId: string, count: number, tx?: DbOrTx) {
      return (tx ?? db)
        .select({ id: sessions.id })
        .from(sessions)
        .where(and(eq(sessions.userId, userId), active()))
        .orderBy(asc(sessions.lastUsedAt), asc(sessions.id))
        .limit(count)
    },
  }
}

export type SessionRepository = ReturnType<typeof createSessionRepository>

/** The repository as a named decorator, so the auth plugin can depend on it (see app.printPlugins()). */
export default fp(
  async function sessionRepositoryPlugin(app) {
    app.decorate('sessionRepository', createSessionRepository(app.db))
  },
  { name: 'session-repository', dependencies: ['db'] },
)
