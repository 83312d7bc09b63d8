import type { FastifyInstance } from 'fastify'
import type { DbOrTx } from '../../db/client.ts'
import { createHistoryRepository } from '../auth/history-repository.ts'
import { deleteUserSamples } from '../measurement/repository.ts'
import { createMfaRepository } from '../mfa/repository.ts'
import { createAuthorizationRepository } from '../oauth/repository.ts'
import { createGroupRepository } from '../sharing/group-repository.ts'
import { createSharingRepository } from '../sharing/repository.ts'
import { deleteUserTelemetry } from '../telemetry/repository.ts'
import { type UserRow, createUserRepository } from '../user/repository.ts'
import { createWebhookRepository } from '../webhooks/repository.ts'

/**
 * A step run inside the deletion transaction, before the user row goes. Rows of user-data tables
 * keyed by `user_id` need no step (they cascade from users); a step is for data kept by e-mail address
 * or other personal keys, for tables without a foreign key to users (those distributed by a key of
 * their own on Citus), and for rules like "a group dies with its last member".
 */
export interface DeletionStep {
  name: string
  run(tx: DbOrTx, user: Pick<UserRow, 'id' | 'email'>): Promise<void>
}

export function accountDeletionSteps(app: FastifyInstance): DeletionStep[] {
  const history = createHistoryRepository(app.db)
  const groups = createGroupRepository(app.db)
  const mfa = createMfaRepository(app.db)
  const sharing = createSharingRepository(app.db)
  const authorizations = createAuthorizationRepository(app.db)
  const webhooks = createWebhookRepository(app.db)
  return [
    // Shares are keyed by owner (they go with the owner's row); the viewer's side and the codes have no foreign key.
    { name: 'shares viewed and invite codes', run: (tx, user) => sharing.forgetUser(user.id, tx) },
    // passkey_credentials is keyed by credential id, without a foreign key (Citus: docs/scaling.md).
    {
      name: 'passkeys and their credential ids',
      run: async (tx, user) => void (await mfa.deletePasskeysOf(user.id, tx)),
    },
    // Beddit: a group is deleted when one member is left; leaving by deletion counts too. Peer-group tables
    // are distributed by group (Citus) and have no foreign key to users: invites to the account go (with
    // their codes), the account is left out of what it created and of the invites it sent (docs/scaling.md).
    { name: 'peer groups', run: (tx, user) => groups.forgetUser(user.id, tx) },
    // Telemetry is distributed by its own key, without a foreign key to users: the user's rows go here.
    { name: 'telemetry', run: (tx, user) => deleteUserTelemetry(tx, user.id) },
    // Raw samples of the row table: no foreign key (an upload checked it once per sample). The user row is
    // locked FOR UPDATE already, so an upload that inserted rows has committed (these go) and one that has not
    // fails on the rollup's foreign key once this commits (db/schema/measurement.ts).
    { name: 'measurement samples', run: (tx, user) => deleteUserSamples(tx, user.id) },
    { name: 'login attempts by e-mail', run: (tx, user) => history.deleteByEmail(user.email, tx) },
    { name: 'mail to the address', run: (tx, user) => app.mailer.forgetRecipient(tx, user.email) },
    { name: 'rate counters', run: (tx, user) => app.limits.forget(tx, user.id, user.email) },
    // The tables below are distributed by a key of their own on Citus and have no foreign key to users
    // (docs/scaling.md): each is a step, and test/account/delete-account.test.ts proves it by the code.
    // The account's own webhook subscriptions (messages, attempts and events cascade from each), before the
    // announcements: these would only queue events for subscriptions that go with the account.
    { name: 'webhook subscriptions', run: async (tx, user) => void (await webhooks.deleteOwnedBy(user.id, tx)) },
    // Pending passkey ceremonies and the lookup rows of logins waiting for a second factor.
    { name: 'passkey challenges and pending logins', run: (tx, user) => mfa.forgetUser(user.id, tx) },
    // Client apps' webhook subscriptions hear that the account is gone (its change log goes with it).
    {
      name: 'user.deleted webhook',
      run: (tx, user) => app.webhooks.announce(tx, user.id, 'user.deleted', { user_id: user.id }),
    },
    // Third-party apps hear that their grant ended: this reads the grants, so it runs before they are deleted.
    {
      name: 'authorization.revoked webhooks',
      run: async (tx, user) => app.webhooks.authorizationRevoked(tx, await authorizations.liveGrants(user.id, tx)),
    },
    // Then every OAuth row of the account: grants, codes, tokens, sign-in sessions.
    {
      name: 'OAuth grants, codes and tokens',
      run: async (tx, user) => void (await authorizations.deleteAccountRows(user.id, tx)),
    },
  ]
}

/**
 * Deletes an account and every row that belongs to it in one transaction. Self-service deletion and
 * the admin's delete both come here. `inTx` runs last inside the same transaction (the audit entry).
 */
export function createAccountDeletionService(app: FastifyInstance) {
  const users = createUserRepository(app.db)
  const steps = accountDeletionSteps(app)

  return {
    /** False when there was no such user. */
    async deleteAccount(userId: string, inTx?: (tx: DbOrTx) => Promise<void>): Promise<boolean> {
      return app.transactionEndingSessions(async (tx, end) => {
        // The lock makes a concurrent login wait, then find no user.
        const user = await users.findForUpdate(userId, tx)
        if (!user) return false
        await end(user.id, 'account_deleted')
        for (const step of steps) await step.run(tx, user)
        await users.delete(user.id, tx)
        if (inTx) await inTx(tx)
        return true
      })
    },
  }
}

export type AccountDeletionService = ReturnType<typeof createAccountDeletionService>
