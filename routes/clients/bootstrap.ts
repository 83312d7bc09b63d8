import type { FastifyInstance } from 'fastify'
import { createClientAppRepository } from './repository.ts'

/**
 * First start on the embedded database: create a development client and print its
 * x-auth-token once, so `npm install && npm start` is enough to try the API.
 */
export async function ensureDevelopmentClient(app: FastifyInstance) {
  if (app.config.NODE_ENV === 'production' || app.database.kind !== 'pglite') return
  const clients = createClientAppRepository(app.db)
  if ((await clients.count()) > 0) return
  const client = await clients.create('development')
  // Printed on stdout on purpose (not through the redacting logger): it is shown once and never stored in clear.
  process.stdout.write(
    `\nDevelopment client created (shown once, keep it):\n  client_id:    ${client.client_id}\n  x-auth-token: ${client.x_auth_token}\n\n`,
  )
}
