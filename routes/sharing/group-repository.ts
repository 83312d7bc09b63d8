import { type SQL, and, asc, count, eq, gt, inArray, lt, sql } from 'drizzle-orm'
import type { Db, DbOrTx } from '../../db/client.ts'
import { peerGroupInviteCodes, peerGroupInvites, peerGroupMembers, peerGroups, users } from '../../db/schema/index.ts'

/** The code rows of invites that went (no foreign key: docs/scaling.md). */
async function forgetCodes(tx: DbOrTx, rows: Array<{ codeHash: string }>) {
  const hashes = rows.map((r) => r.codeHash)
  if (hashes.length > 0) await tx.delete(peerGroupInviteCodes).where(inArray(peerGroupInviteCodes.codeHash, hashes))
}

/**
 * Peer groups are keyed by group (Citus: distributed by it). Every statement on invites names the group; an
 * e-mailed code is looked up in peer_group_invite_codes first, and must name the group of the link's path.
 */
export function createGroupRepository(db: Db) {
  /** The invite an e-mailed code names, in the link's group; null when none (or another group's). */
  async function inviteOfCode(groupId: string, codeHash: string, tx?: DbOrTx) {
    const [row] = await (tx ?? db)
      .select({ groupId: peerGroupInviteCodes.groupId, inviteId: peerGroupInviteCodes.inviteId })
      .from(peerGroupInviteCodes)
      .where(eq(peerGroupInviteCodes.codeHash, codeHash))
      .limit(1)
    return row && row.groupId === groupId ? row : null
  }

  return {
    /** A live invite by its e-mailed code, with who sent it and how many are in the group (the confirmation page). */
    async findInviteByCode(groupId: string, codeHash: string) {
      const code = await inviteOfCode(groupId, codeHash)
      if (!code) return null
      const [invite] = await db
        .select({
          inviteeEmail: users.email,
          createdBy: peerGroupInvites.createdBy,
          expiresAt: peerGroupInvites.expiresAt,
        })
        .from(peerGroupInvites)
        .innerJoin(users, eq(users.id, peerGroupInvites.inviteeId))
        .where(
          and(
            eq(peerGroupInvites.groupId, code.groupId),
            eq(peerGroupInvites.id, code.inviteId),
            eq(peerGroupInvites.codeHash, codeHash),
            gt(peerGroupInvites.expiresAt, sql`now()`),
          ),
        )
        .limit(1)
      if (!invite) return null
      const [inviter] = invite.createdBy
        ? await db
            .select({ firstName: users.firstName, lastName: users.lastName, email: users.email })
            .from(users)
            .where(eq(users.id, invite.createdBy))
        : []
      const [members] = await db
        .select({ n: count() })
        .from(peerGroupMembers)
        .where(eq(peerGroupMembers.groupId, groupId))
      return { ...invite, inviter: inviter ?? null, memberCount: members.n }
    },

    /** The groups I belong to, with members and live invites (Beddit's group listing). */
    async listFor(userId: string, tx?: DbOrTx) {
      const q = tx ?? db
      const groups = await q
        .select({ id: peerGroups.id, createdAt: peerGroups.createdAt })
        .from(peerGroups)
        .innerJoin(peerGroupMembers, eq(peerGroupMembers.groupId, peerGroups.id))
        .where(eq(peerGroupMembers.userId, userId))
        .orderBy(asc(peerGroups.createdAt), asc(peerGroups.id))
      if (groups.length === 0) return []
      const ids = groups.map((g) => g.id)
      const members = await q
        .select({
          groupId: peerGroupMembers.groupId,
          id: users.id,
          email: users.email,
          firstName: users.firstName,
          lastName: users.lastName,
        })
        .from(peerGroupMembers)
        .innerJoin(users, eq(users.id, peerGroupMembers.userId))
        .where(inArray(peerGroupMembers.groupId, ids))
        .orderBy(asc(peerGroupMembers.joinedAt), asc(users.id))
      const invites = await q
        .select({
          groupId: peerGroupInvites.groupId,
          createdAt: peerGroupInvites.createdAt,
          createdBy: peerGroupInvites.createdBy,
          email: users.email,
        })
        .from(peerGroupInvites)
        .innerJoin(users, eq(users.id, peerGroupInvites.inviteeId))
        .where(and(inArray(peerGroupInvites.groupId, ids), gt(peerGroupInvites.expiresAt, sql`now()`)))
        .orderBy(asc(peerGroupInvites.createdAt))
      return groups.map((g) => ({
        id: g.id,
        created: g.createdAt.toISOString(),
        members: members
          .filter((m) => m.groupId === g.id)
          .map((m) => ({ id: m.id, email: m.email, first_name: m.firstName, last_name: m.lastName })),
        pending_invites: invites
          .filter((i) => i.groupId === g.id)
          .map((i) => ({ created: i.createdAt.toISOString(), created_by: i.createdBy, email: i.email })),
      }))
    },

    async create(userId: string, tx: DbOrTx): Promise<string> {
      const [group] = await tx.insert(peerGroups).values({ createdBy: userId }).returning({ id: peerGroups.id })
      await tx.insert(peerGroupMembers).values({ groupId: group.id, userId })
      return group.id
    },

    async isMember(groupId: string, userId: string, tx?: DbOrTx): Promise<boolean> {
      const [row] = await (tx ?? db)
        .select({ userId: peerGroupMembers.userId })
        .from(peerGroupMembers)
        .where(and(eq(peerGroupMembers.groupId, groupId), eq(peerGroupMembers.userId, userId)))
        .limit(1)
      return !!row
    },

    /**
     * A new invite and its code row; an expired one to the same person is replaced (its code row goes with it).
     * False when one is still live.
     */
    async invite(
      values: { groupId: string; inviteeId: string; createdBy: string; codeHash: string; expiresAt: Date },
      tx: DbOrTx,
    ): Promise<boolean> {
      const expired = await tx
        .delete(peerGroupInvites)
        .where(
          and(
            eq(peerGroupInvites.groupId, values.groupId),
            eq(peerGroupInvites.inviteeId, values.inviteeId),
            lt(peerGroupInvites.expiresAt, sql`now()`),
          ),
        )
        .returning({ codeHash: peerGroupInvites.codeHash })
      await forgetCodes(tx, expired)
      const rows = await tx
        .insert(peerGroupInvites)
        .values(values)
        .onConflictDoNothing({ target: [peerGroupInvites.groupId, peerGroupInvites.inviteeId] })
        .returning({ id: peerGroupInvites.id })
      const id = rows[0]?.id
      if (!id) return false
      await tx.insert(peerGroupInviteCodes).values({ codeHash: values.codeHash, groupId: values.groupId, inviteId: id })
      return true
    },

    /**
     * Turns a live invite into a membership: by the e-mailed code (its code row names the invite), or by the
     * invitee through the API. The invite and its code row go in the same transaction.
     */
    async accept(groupId: string, where: { codeHash: string } | { inviteeId: string }): Promise<string | null> {
      return db.transaction(async (tx) => {
        let which: SQL | undefined
        if ('codeHash' in where) {
          const code = await inviteOfCode(groupId, where.codeHash, tx)
          if (!code) return null
          which = and(eq(peerGroupInvites.id, code.inviteId), eq(peerGroupInvites.codeHash, where.codeHash))
        } else {
          which = eq(peerGroupInvites.inviteeId, where.inviteeId)
        }
        const [invite] = await tx
          .delete(peerGroupInvites)
          .where(and(eq(peerGroupInvites.groupId, groupId), which, gt(peerGroupInvites.expiresAt, sql`now()`)))
          .returning({ inviteeId: peerGroupInvites.inviteeId, codeHash: peerGroupInvites.codeHash })
        if (!invite) return null
        await forgetCodes(tx, [invite])
        await tx.insert(peerGroupMembers).values({ groupId, userId: invite.inviteeId }).onConflictDoNothing()
        return invite.inviteeId
      })
    },

    /** Removes a member; a group left with one member (or none) is deleted, as the reference says. */
    async removeMember(groupId: string, memberId: string, tx: DbOrTx): Promise<boolean> {
      const removed = await tx
        .delete(peerGroupMembers)
        .where(and(eq(peerGroupMembers.groupId, groupId), eq(peerGroupMembers.userId, memberId)))
        .returning({ userId: peerGroupMembers.userId })
      if (removed.length === 0) return false
      await this.pruneGroups([groupId], tx)
      return true
    },

    /** Deletes the groups of this list that have fewer than two members left. */
    async pruneGroups(groupIds: string[], tx: DbOrTx) {
      if (groupIds.length === 0) return
      const counts = await tx
        .select({ groupId: peerGroupMembers.groupId, n: count() })
        .from(peerGroupMembers)
        .where(inArray(peerGroupMembers.groupId, groupIds))
        .groupBy(peerGroupMembers.groupId)
      const alive = new Set(counts.filter((c) => c.n >= 2).map((c) => c.groupId))
      const dead = groupIds.filter((id) => !alive.has(id))
      if (dead.length === 0) return
      // Their invites go by the foreign key to the group (co-located on Citus); their code rows by code.
      await forgetCodes(
        tx,
        await tx
          .select({ codeHash: peerGroupInvites.codeHash })
          .from(peerGroupInvites)
          .where(inArray(peerGroupInvites.groupId, dead)),
      )
      await tx.delete(peerGroups).where(inArray(peerGroups.id, dead))
    },

    /** Leaves every group (account deletion); groups left with one member die, as on removal. */
    async leaveAll(userId: string, tx: DbOrTx) {
      const left = await tx
        .delete(peerGroupMembers)
        .where(eq(peerGroupMembers.userId, userId))
        .returning({ groupId: peerGroupMembers.groupId })
      await this.pruneGroups(
        left.map((r) => r.groupId),
        tx,
      )
    },

    /**
     * Account deletion, in place of the foreign keys to users (docs/scaling.md): the invites to the account go
     * with their code rows (first, so that an acceptance committing meanwhile is then left by `leaveAll`), then
     * it leaves every group, and the groups it created and invites it sent stay, without its id (the set-null
     * the keys did). Multi-shard on Citus (by invitee and creator), as account deletion is rare.
     */
    async forgetUser(userId: string, tx: DbOrTx) {
      await forgetCodes(
        tx,
        await tx
          .delete(peerGroupInvites)
          .where(eq(peerGroupInvites.inviteeId, userId))
          .returning({ codeHash: peerGroupInvites.codeHash }),
      )
      await this.leaveAll(userId, tx)
      await tx.update(peerGroupInvites).set({ createdBy: null }).where(eq(peerGroupInvites.createdBy, userId))
      await tx.update(peerGroups).set({ createdBy: null }).where(eq(peerGroups.createdBy, userId))
    },

    /** My memberships, for the account export. */
    async *exportRows(userId: string) {
      for (const g of await this.listFor(userId)) {
        yield {
          id: g.id,
          created: g.created,
          members: g.members.map((m) => m.email),
          pending_invites: g.pending_invites,
        }
      }
    },
  }
}

export type GroupRepository = ReturnType<typeof createGroupRepository>
