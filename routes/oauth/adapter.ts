import { and, eq, isNull, or, sql } from 'drizzle-orm'
import type { Adapter, AdapterPayload } from 'oidc-provider'
import type { Db, DbOrTx } from '../../db/client.ts'
import { oauthModels } from '../../db/schema/index.ts'
import { type EndedGrant, GRANT_TYPES, type OAuthClientRepository } from './repository.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

type Payload = AdapterPayload & {
  session?: { accountId?: string }
  result?: { login?: { accountId?: string } }
  params?: { client_id?: unknown }
}

/** The user a row belongs to (tokens, grants, sessions, interactions), so deleting the account deletes it. */
function accountOf(payload: Payload): string | null {
  const id = payload.accountId ?? payload.session?.accountId ?? payload.result?.login?.accountId
  return typeof id === 'string' && UUID.test(id) ? id : null
}

function clientOf(payload: Payload): string | null {
  const id = payload.clientId ?? payload.params?.client_id
  return typeof id === 'string' ? id : null
}

/**
 * oidc-provider's storage (its Adapter interface) in our database, one class per model kind: every
 * process of the server sees the same grants, codes, tokens, device codes and sign-in sessions. Clients
 * are not stored by the library: they are read from `oauth_clients` (what admins and the CLI register),
 * with the SHA-256 of the secret in place of the secret (the comparison hashes too, see provider.ts).
 */
export function drizzleAdapter(
  db: Db,
  clients: OAuthClientRepository,
  /** Runs in the transaction that deletes a grant (the library revoking it: refresh-token reuse, RFC 7009). */
  grantEnded?: (tx: DbOrTx, grant: EndedGrant) => Promise<void>,
) {
  return class DrizzleAdapter implements Adapter {
    constructor(readonly kind: string) {}

    async upsert(id: string, payload: Payload, expiresIn: number): Promise<void> {
      if (this.kind === 'Client') throw new Error('clients are registered by admins, not by the library')
      const values = {
        payload,
        grantId: this.kind === 'Grant' ? id : (payload.grantId ?? null),
        userCode: payload.userCode ?? null,
        uid: payload.uid ?? null,
        accountId: accountOf(payload),
        clientId: clientOf(payload),
        expiresAt: expiresIn ? sql`now() + make_interval(secs => ${expiresIn})` : null,
      }
      await db
        .insert(oauthModels)
        .values({ kind: this.kind, id, ...values })
        .onConflictDoUpdate({ target: [oauthModels.kind, oauthModels.id], set: values })
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.kind === 'Client') return this.client(id)
      return this.findBy(eq(oauthModels.id, id))
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.findBy(eq(oauthModels.userCode, userCode))
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.findBy(eq(oauthModels.uid, uid))
    }

    private async findBy(where: ReturnType<typeof eq>): Promise<AdapterPayload | undefined> {
      const [row] = await db
        .select({ payload: oauthModels.payload, consumedAt: oauthModels.consumedAt })
        .from(oauthModels)
        .where(
          and(
            eq(oauthModels.kind, this.kind),
            where,
            // An expired device code is still found, so that polling answers `expired_token` (RFC 8628
            // §3.5), not `invalid_grant`; the library checks every expiry itself, the sweep deletes them.
            this.kind === 'DeviceCode'
              ? undefined
              : or(isNull(oauthModels.expiresAt), sql`${oauthModels.expiresAt} > now()`),
          ),
        )
        .limit(1)
      if (!row) return undefined
      const payload = row.payload as AdapterPayload
      return row.consumedAt ? { ...payload, consumed: Math.floor(row.consumedAt.getTime() / 1000) } : payload
    }

    async consume(id: string): Promise<void> {
      await db
        .update(oauthModels)
        .set({ consumedAt: sql`now()` })
        .where(and(eq(oauthModels.kind, this.kind), eq(oauthModels.id, id)))
    }

    async destroy(id: string): Promise<void> {
      const where = and(eq(oauthModels.kind, this.kind), eq(oauthModels.id, id))
      if (this.kind !== 'Grant' || !grantEnded) {
        await db.delete(oauthModels).where(where)
        return
      }
      await db.transaction(async (tx) => {
        const [gone] = await tx
          .delete(oauthModels)
          .where(where)
          .returning({ accountId: oauthModels.accountId, clientId: oauthModels.clientId })
        if (gone?.accountId && gone.clientId) {
          await grantEnded(tx, { userId: gone.accountId, clientId: gone.clientId, grantId: id })
        }
      })
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await db.delete(oauthModels).where(and(eq(oauthModels.kind, this.kind), eq(oauthModels.grantId, grantId)))
    }

    /** A registered, unrevoked client as the library's client metadata. */
    private async client(id: string): Promise<AdapterPayload | undefined> {
      const row = await clients.live(id)
      if (!row) return undefined
      const grantTypes = row.grantTypes.filter((g) => (GRANT_TYPES as readonly string[]).includes(g))
      return {
        client_id: row.id,
        client_name: row.name,
        // The hash stands in for the secret: compareClientSecret hashes what the client presents.
        ...(row.secretHash
          ? { client_secret: row.secretHash, token_endpoint_auth_method: 'client_secret_basic' }
          : { token_endpoint_auth_method: 'none' }),
        redirect_uris: row.redirectUris,
        grant_types: grantTypes,
        response_types: grantTypes.includes('authorization_code') ? ['code'] : [],
        scope: row.scopes.join(' '),
        id_token_signed_response_alg: 'EdDSA',
      }
    }
  }
}
