import type { Db } from '../../db/client.ts'
import type { Config } from '../../plugins/config.ts'
import { createClientAppRepository } from '../clients/repository.ts'
import { createOAuthClientRepository } from '../oauth/repository.ts'
import { type Owner, createWebhookRepository } from './repository.ts'
import { EVENT_TYPES, MAX_SUBSCRIPTIONS } from './schemas.ts'
import { TargetRefused, checkTarget, systemResolver } from './targets.ts'

export const WEBHOOK_USAGE = `  webhook create --client CLIENT_ID --url URL --events T1,T2 [--description D]
                                            subscribe a client app's (or, with an nwc_ id, a third-party OAuth
                                            client's) URL to its users' events; prints the subscription and its
                                            whsec_ secret (shown once) as JSON
  webhook list --client CLIENT_ID           the client app's subscriptions (never their secrets)
  webhook rotate --id SUBSCRIPTION_ID [--overlap-s N]
                                            a new secret; the old one also signs N more seconds (default 86400)
  webhook enable --id SUBSCRIPTION_ID       send again (after a 410, failures or disable)
  webhook disable --id SUBSCRIPTION_ID      stop sending (changes meanwhile are not queued: GET /v1/sync has them)
  webhook delete --id SUBSCRIPTION_ID       delete it, its queue and its delivery log
`

export class OperatorError extends Error {}

interface Values {
  client?: string
  url?: string
  events?: string
  description?: string
  id?: string
  'overlap-s'?: string
}

const shown = (s: {
  id: string
  url: string
  eventTypes: string[]
  status: string
  disabledReason: string | null
  clientId: string | null
  oauthClientId: string | null
  createdAt: Date
}) => ({
  id: s.id,
  client_id: s.clientId,
  oauth_client_id: s.oauthClientId,
  url: s.url,
  event_types: s.eventTypes,
  status: s.status,
  disabled_reason: s.disabledReason,
  created: s.createdAt.toISOString(),
})

/** `npm run cli -- webhook <action>`: client apps' subscriptions, as the admin API manages them. */
export async function webhookCommand(db: Db, config: Config, action: string, values: Values): Promise<unknown> {
  const repo = createWebhookRepository(db)
  const clients = createClientAppRepository(db)
  const need = (name: keyof Values) => {
    const v = values[name]
    if (!v) throw new OperatorError(`webhook ${action} needs --${name}`)
    return v
  }
  const clientOf = async (): Promise<Owner> => {
    const id = need('client')
    if (id.startsWith('nwc_')) {
      const oauthClient = await createOAuthClientRepository(db).get(id)
      if (!oauthClient) throw new OperatorError('no OAuth client has this id')
      return { oauthClientId: oauthClient.id }
    }
    const client = await clients.get(id)
    if (!client || client.revokedAt) throw new OperatorError('no live client app has this id')
    return { clientId: client.id }
  }
  const subscription = async () => {
    const row = await repo.byId(need('id'))
    if (!row?.clientId && !row?.oauthClientId) throw new OperatorError("no client app's subscription has this id")
    return row
  }
  switch (action) {
    case 'create': {
      const owner = await clientOf()
      const url = need('url')
      const eventTypes = need('events').split(',')
      const unknown = eventTypes.filter((e) => !(EVENT_TYPES as readonly string[]).includes(e))
      if (unknown.length > 0) {
        throw new OperatorError(`unknown event types: ${unknown.join(', ')} (known: ${EVENT_TYPES.join(', ')})`)
      }
      try {
        await checkTarget(url, { allowPrivate: config.WEBHOOK_ALLOW_PRIVATE_TARGETS, resolve: systemResolver })
      } catch (err) {
        if (err instanceof TargetRefused) throw new OperatorError(`--url ${err.message}`)
        throw err
      }
      if ((await repo.list(owner, MAX_SUBSCRIPTIONS)).length >= MAX_SUBSCRIPTIONS) {
        throw new OperatorError(`a client app has at most ${MAX_SUBSCRIPTIONS} subscriptions`)
      }
      const row = await repo.create(owner, { url, eventTypes, description: values.description ?? null })
      return { ...shown(row), secret: row.secret }
    }
    case 'list':
      return (await repo.list(await clientOf(), MAX_SUBSCRIPTIONS)).map(shown)
    case 'rotate': {
      const overlap = Number(values['overlap-s'] ?? 86400)
      if (!Number.isInteger(overlap) || overlap < 0 || overlap > 604800) {
        throw new OperatorError('--overlap-s must be a whole number of seconds, 0..604800')
      }
      const row = await repo.rotate((await subscription()).id, overlap)
      if (!row) throw new OperatorError('no such subscription')
      return { ...shown(row), secret: row.secret }
    }
    case 'enable':
    case 'disable': {
      const row = await repo.update(
        (await subscription()).id,
        { status: action === 'enable' ? 'active' : 'disabled' },
        'admin',
      )
      if (!row) throw new OperatorError('no such subscription')
      return shown(row)
    }
    case 'delete':
      await repo.remove((await subscription()).id)
      return { status: 'success' }
    default:
      throw new OperatorError(`unknown command: webhook ${action}`)
  }
}
