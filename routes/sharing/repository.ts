import { createHash, randomBytes } from 'node:crypto'
import { and, desc, eq, gt, inArray, isNotNull, lt, or, sql } from 'drizzle-orm'
import { alias } from 'drizzle-orm/pg-core'
import type { Db, DbOrTx } from '../../db/client.ts'
import { keysetAfter } from '../../db/keyset.ts'
import { SCOPES, type Scope, peerGroupMembers, shareInviteCodes, shares, users } from '../../db/schema/index.ts'

export { SCOPES, type Scope }

/** Invite codes are 256 random bits, so SHA-256 is enough to keep them out of the table. */
export function newInviteCode() {
  const code = randomBytes(32).toString('base64url')
  return { code, hash: hashInviteCode(code) }
}
export function hashInviteCode(code: string): string {
  return createHash('sha256').update(code).digest('hex')
}

const owner = alias(users, 'owner')
const viewer = alias(users, 'viewer')

const shareColumns = {
  id: shares.id,
  status: shares.status,
  scopes: shares.scopes,
  expiresAt: shares.expiresAt,
  acceptedAt: shares.acceptedAt,
  createdAt: shares.createdAt,
  updatedAt: shares.updatedAt,
  ownerId: owner.id,
  ownerEmail: owner.email,
  ownerFirstName: owner.firstName,
  ownerLastName: owner.lastName,
  viewerId: viewer.id,
  viewerEmail: viewer.email,
  viewerFirstName: viewer.firstName,
  viewerLastName: viewer.lastName,
}

/** A pending invite counts only until it expires. */
const live = () => or(eq(shares.status, 'active'), gt(shares.expiresAt, sql`now()`))

function joined(db: DbOrTx) {
  return db
    .select(shareColumns)
    .from(shares)
    .innerJoin(owner, eq(owner.id, shares.ownerId))
    .innerJoin(viewer, eq(viewer.id, shares.viewerId))
}

function after(cursor?: { at: Date; id: string }) {
  return keysetAfter(shares.createdAt, shares.id, cursor)
}

/** The invite codes of shares that went (no foreign key: docs/scaling.md). */
async function forgetCodes(tx: DbOrTx, rows: Array<{ codeHash: string | null }>) {
  const hashes = rows.map((r) => r.codeHash).filter((h): h is string => h !== null)
  if (hashes.length > 0) await tx.delete(shareInviteCodes).where(inArray(shareInviteCodes.codeHash, hashes))
}

/** Runs `work` in the given transaction, or in a new one. */
function inTx<T>(db: Db, tx: DbOrTx | undefined, work: (tx: DbOrTx) => Promise<T>): Promise<T> {
  return tx ? work(tx) : db.transaction(work)
}

/**
 * Shares are the owner's data (keyed by owner_id). Owner-side queries filter by owner_id; the viewer side
 * ("invites to me", "shared with me", accept/decline/stop by id) filters by viewer_id, a multi-shard query on
 * Citus (docs/scaling.md); an e-mailed code is looked up in share_invite_codes first.
 */
export function createSharingRepository(db: Db) {
  return {
    /** Creates a pending share; an expired invite to the same viewer is replaced. Null when one is live. */
    async invite(
      values: { ownerId: string; viewerId: string; scopes: string[]; codeHash: string; expiresAt: Date },
      tx: DbOrTx,
    ): Promise<string | null> {
      const expired = await tx
        .delete(shares)
        .where(
          and(
            eq(shares.ownerId, values.ownerId),
            eq(shares.viewerId, values.viewerId),
            eq(shares.status, 'pending'),
            lt(shares.expiresAt, sql`now()`),
          ),
        )
        .returning({ codeHash: shares.inviteCodeHash })
      await forgetCodes(tx, expired)
      const rows = await tx
        .insert(shares)
        .values({ ...values, inviteCodeHash: values.codeHash, status: 'pending' })
        .onConflictDoNothing({ target: [shares.ownerId, shares.viewerId] })
        .returning({ id: shares.id })
      const id = rows[0]?.id
      if (!id) return null
      await tx.insert(shareInviteCodes).values({ codeHash: values.codeHash, ownerId: values.ownerId, shareId: id })
      return id
    },

    /** The share an e-mailed code names (owner and id), from the lookup table; null when none. */
    async shareOfCode(codeHash: string, tx?: DbOrTx) {
      const [row] = await (tx ?? db)
        .select({ ownerId: shareInviteCodes.ownerId, shareId: shareInviteCodes.shareId })
        .from(shareInviteCodes)
        .where(eq(shareInviteCodes.codeHash, codeHash))
        .limit(1)
      return row ?? null
    },

    /** A live pending invite by its e-mailed code (the confirmation page); null when none. */
    async findInviteByCode(codeHash: string) {
      const share = await this.shareOfCode(codeHash)
      if (!share) return null
      const [row] = await joined(db)
        .where(
          and(
            eq(shares.ownerId, share.ownerId),
            eq(shares.id, share.shareId),
            eq(shares.inviteCodeHash, codeHash),
            eq(shares.status, 'pending'),
            gt(shares.expiresAt, sql`now()`),
          ),
        )
        .limit(1)
      return row ?? null
    },

    async get(ownerId: string, id: string, tx?: DbOrTx) {
      const [row] = await joined(tx ?? db)
        .where(and(eq(shares.ownerId, ownerId), eq(shares.id, id)))
        .limit(1)
      return row ?? null
    },

    /** My shares (pending and active), newest first. */
    async listOwned(ownerId: string, limit: number, cursor?: { at: Date; id: string }) {
      return joined(db)
        .where(and(eq(shares.ownerId, ownerId), live(), after(cursor)))
        .orderBy(desc(shares.createdAt), desc(shares.id))
        .limit(limit)
    },

    async getOwned(ownerId: string, id: string) {
      const [row] = await joined(db)
        .where(and(eq(shares.id, id), eq(shares.ownerId, ownerId), live()))
        .limit(1)
      return row ?? null
    },

    async updateScopes(ownerId: string, id: string, scopes: string[], tx?: DbOrTx): Promise<boolean> {
      const rows = await (tx ?? db)
        .update(shares)
        .set({ scopes, updatedAt: new Date() })
        .where(and(eq(shares.id, id), eq(shares.ownerId, ownerId), live()))
        .returning({ id: shares.id })
      return rows.length > 0
    },

    /** Revokes an active share or cancels a pending invite of mine. */
    async deleteOwned(ownerId: string, id: string, tx?: DbOrTx): Promise<boolean> {
      return inTx(db, tx, async (tx) => {
        const rows = await tx
          .delete(shares)
          .where(and(eq(shares.id, id), eq(shares.ownerId, ownerId)))
          .returning({ codeHash: shares.inviteCodeHash })
        await forgetCodes(tx, rows)
        return rows.length > 0
      })
    },

    /** Live invites addressed to me. */
    async listInvitesFor(viewerId: string, limit: number, cursor?: { at: Date; id: string }) {
      return joined(db)
        .where(
          and(
            eq(shares.viewerId, viewerId),
            eq(shares.status, 'pending'),
            gt(shares.expiresAt, sql`now()`),
            after(cursor),
          ),
        )
        .orderBy(desc(shares.createdAt), desc(shares.id))
        .limit(limit)
    },

    /** Accepts a live invite, by its id (API, the invitee) or by the e-mailed code (link). */
    async accept(
      where: { viewerId: string; id: string } | { codeHash: string },
      tx?: DbOrTx,
    ): Promise<{ id: string; ownerId: string } | null> {
      return inTx(db, tx, async (tx) => {
        let match: ReturnType<typeof and>
        if ('codeHash' in where) {
          const share = await this.shareOfCode(where.codeHash, tx)
          if (!share) return null
          match = and(
            eq(shares.ownerId, share.ownerId),
            eq(shares.id, share.shareId),
            eq(shares.inviteCodeHash, where.codeHash),
          )
        } else {
          match = and(eq(shares.id, where.id), eq(shares.viewerId, where.viewerId))
        }
        // The row as it was (its code), locked, then the update by its key.
        const [pending] = await tx
          .select({ id: shares.id, ownerId: shares.ownerId, codeHash: shares.inviteCodeHash })
          .from(shares)
          .where(and(match, eq(shares.status, 'pending'), gt(shares.expiresAt, sql`now()`)))
          .for('update')
          .limit(1)
        if (!pending) return null
        await tx
          .update(shares)
          .set({
            status: 'active',
            acceptedAt: new Date(),
            inviteCodeHash: null,
            expiresAt: null,
            updatedAt: new Date(),
          })
          .where(and(eq(shares.ownerId, pending.ownerId), eq(shares.id, pending.id)))
        await forgetCodes(tx, [pending])
        return { id: pending.id, ownerId: pending.ownerId }
      })
    },

    /** Declines an invite addressed to me; answers its owner's id (null: no such invite). */
    async decline(viewerId: string, id: string, tx?: DbOrTx): Promise<string | null> {
      return inTx(db, tx, async (tx) => {
        const rows = await tx
          .delete(shares)
          .where(and(eq(shares.id, id), eq(shares.viewerId, viewerId), eq(shares.status, 'pending')))
          .returning({ ownerId: shares.ownerId, codeHash: shares.inviteCodeHash })
        await forgetCodes(tx, rows)
        return rows[0]?.ownerId ?? null
      })
    },

    /** Who shares with me (active shares), newest first. */
    async listShared(viewerId: string, limit: number, cursor?: { at: Date; id: string }) {
      return joined(db)
        .where(and(eq(shares.viewerId, viewerId), eq(shares.status, 'active'), after(cursor)))
        .orderBy(desc(shares.createdAt), desc(shares.id))
        .limit(limit)
    },

    /** Stops viewing a share; answers its owner's id (null: no such share). */
    async stopViewing(viewerId: string, id: string, tx?: DbOrTx): Promise<string | null> {
      return inTx(db, tx, async (tx) => {
        const rows = await tx
          .delete(shares)
          .where(and(eq(shares.id, id), eq(shares.viewerId, viewerId), eq(shares.status, 'active')))
          .returning({ ownerId: shares.ownerId, codeHash: shares.inviteCodeHash })
        await forgetCodes(tx, rows)
        return rows[0]?.ownerId ?? null
      })
    },

    /**
     * Account deletion: the shares the account views (its own go with it by owner_id) and the invite codes
     * of both. Multi-shard on Citus (by viewer_id), as account deletion is rare.
     */
    async forgetUser(userId: string, tx: DbOrTx) {
      const owned = await tx
        .select({ codeHash: shares.inviteCodeHash })
        .from(shares)
        .where(and(eq(shares.ownerId, userId), isNotNull(shares.inviteCodeHash)))
      await forgetCodes(tx, owned)
      const viewed = await tx
        .delete(shares)
        .where(eq(shares.viewerId, userId))
        .returning({ codeHash: shares.inviteCodeHash })
      await forgetCodes(tx, viewed)
    },

    /**
     * What the viewer may read of the owner's data: the scopes of an active share, every scope when
     * both are members of one peer group, or null when nothing is shared.
     */
    async readableScopes(viewerId: string, ownerId: string): Promise<readonly string[] | null> {
      const m1 = alias(peerGroupMembers, 'm1')
      const m2 = alias(peerGroupMembers, 'm2')
      const [group] = await db
        .select({ groupId: m1.groupId })
        .from(m1)
        .innerJoin(m2, and(eq(m2.groupId, m1.groupId), eq(m2.userId, ownerId)))
        .where(eq(m1.userId, viewerId))
        .limit(1)
      if (group) return SCOPES
      const [share] = await db
        .select({ scopes: shares.scopes })
        .from(shares)
        .where(and(eq(shares.viewerId, viewerId), eq(shares.ownerId, ownerId), eq(shares.status, 'active')))
        .limit(1)
      return share?.scopes ?? null
    },

    /** Everything shared by or with the user, for the account export. */
    async *exportRows(userId: string) {
      const rows = await joined(db)
        .where(or(eq(shares.ownerId, userId), eq(shares.viewerId, userId)))
        .orderBy(shares.createdAt)
      for (const r of rows) {
        yield {
          id: r.id,
          role: r.ownerId === userId ? 'owner' : 'viewer',
          other_user_email: r.ownerId === userId ? r.viewerEmail : r.ownerEmail,
          scopes: r.scopes,
          status: r.status,
          created: r.createdAt.toISOString(),
          accepted_at: r.acceptedAt?.toISOString() ?? null,
        }
      }
    },
  }
}

export type SharingRepository = ReturnType<typeof createSharingRepository>
export type ShareRow = NonNullable<Awaited<ReturnType<SharingRepository['get']>>>
