import { sql } from 'drizzle-orm'
import { check, index, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import { users } from './user.ts'

/** The data domains a share can open to its viewer (the values of `shares.scopes`). */
export const SCOPES = [
  'measurement',
  'statistics',
  'checkin',
  'day-feedback',
  'activity',
  'intention',
  'insight',
] as const
export type Scope = (typeof SCOPES)[number]

/**
 * A share: the owner lets the viewer read some of their data (scopes). It is `pending` until the
 * viewer accepts the e-mailed invite (before `expires_at`), then `active`. Declined, cancelled,
 * revoked or stopped shares are deleted: access ends with the row. Owner's data: keyed by owner_id (Citus:
 * distributed by it); the viewer has no foreign key (a second user per row cannot be co-located), so account
 * deletion removes the shares it views (routes/sharing/repository.ts `forgetUser`).
 */
export const shares = pgTable(
  'shares',
  {
    id: uuid('id').notNull().defaultRandom(),
    ownerId: uuid('owner_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    viewerId: uuid('viewer_id').notNull(),
    scopes: text('scopes').array().notNull(),
    status: text('status', { enum: ['pending', 'active'] })
      .notNull()
      .default('pending'),
    /** The pending invite's code (SHA-256); unique across shares through `share_invite_codes`. */
    inviteCodeHash: text('invite_code_hash'),
    expiresAt: timestamp('expires_at', { withTimezone: true, precision: 3 }),
    acceptedAt: timestamp('accepted_at', { withTimezone: true, precision: 3 }),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    // Led by owner_id, the distribution column on Citus (docs/scaling.md).
    primaryKey({ name: 'shares_pkey', columns: [t.ownerId, t.id] }),
    uniqueIndex('shares_owner_viewer_key').on(t.ownerId, t.viewerId),
    index('shares_viewer_idx').on(t.viewerId, t.status),
    check('shares_not_self', sql`${t.ownerId} <> ${t.viewerId}`),
  ],
)

/**
 * A pending invite by its e-mailed code: the link is opened without an account, so the code must name its
 * share (owner_id, share_id) before the owner's rows can be read. Written with the invite, deleted when it
 * is accepted or its share goes; no foreign key, as on Citus, where it is distributed by code_hash.
 */
export const shareInviteCodes = pgTable('share_invite_codes', {
  codeHash: text('code_hash').primaryKey(),
  ownerId: uuid('owner_id').notNull(),
  shareId: uuid('share_id').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
})

/**
 * Peer groups (Beddit reference): members read each other's data with every scope. The tenant is the group:
 * on Citus the three tables are distributed by the group's id, co-located (docs/scaling.md), so none refers
 * to `users` (a foreign key there would cross shards). Account deletion does what the foreign keys' cascade and
 * set-null did (routes/sharing/group-repository.ts `forgetUser`).
 */
export const peerGroups = pgTable('peer_groups', {
  id: uuid('id').primaryKey().defaultRandom(),
  /** Null once the creator's account is deleted. */
  createdBy: uuid('created_by'),
  createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
})

export const peerGroupMembers = pgTable(
  'peer_group_members',
  {
    groupId: uuid('group_id')
      .notNull()
      .references(() => peerGroups.id, { onDelete: 'cascade' }),
    userId: uuid('user_id').notNull(),
    joinedAt: timestamp('joined_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.userId] }), index('peer_group_members_user_idx').on(t.userId)],
)

/** A pending invitation; its e-mailed code is unique across groups through `peer_group_invite_codes`. */
export const peerGroupInvites = pgTable(
  'peer_group_invites',
  {
    id: uuid('id').notNull().defaultRandom(),
    groupId: uuid('group_id')
      .notNull()
      .references(() => peerGroups.id, { onDelete: 'cascade' }),
    inviteeId: uuid('invitee_id').notNull(),
    /** Null once the inviter's account is deleted. */
    createdBy: uuid('created_by'),
    /** SHA-256 of the e-mailed code (routes/sharing/repository.ts `hashInviteCode`). */
    codeHash: text('code_hash').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true, precision: 3 }).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    // Led by group_id, the distribution column on Citus.
    primaryKey({ name: 'peer_group_invites_pkey', columns: [t.groupId, t.id] }),
    uniqueIndex('peer_group_invites_group_invitee_key').on(t.groupId, t.inviteeId),
    index('peer_group_invites_invitee_idx').on(t.inviteeId),
  ],
)

/**
 * An invitation by its e-mailed code (hashed): names the invite (group_id, invite_id), so the code alone finds
 * it and stays unique across groups, as `share_invite_codes` does for shares. Written with the invite and
 * deleted in the transaction of every path that ends it (accept, replacement of an expired one, the group's
 * deletion, account deletion); no foreign key, as on Citus, where it is distributed by code_hash.
 */
export const peerGroupInviteCodes = pgTable('peer_group_invite_codes', {
  codeHash: text('code_hash').primaryKey(),
  groupId: uuid('group_id').notNull(),
  inviteId: uuid('invite_id').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
})
