import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Database, openDatabase } from '../../db/client.ts'
import { hashPassword } from '../../routes/auth/passwords.ts'
import { createClientAppRepository } from '../../routes/clients/repository.ts'
import { createUserRepository } from '../../routes/user/repository.ts'
import { freshDatabase } from './database.ts'

export const SEED_PASSWORD = 'Tide-Pool-42!'

/**
 * A database for a server child process, seeded with a client app and verified users: a fresh
 * PostgreSQL database when DATABASE_URL is set, else a PGlite folder (closed again before the
 * server opens it: one process per PGlite folder). `env` is what the server needs to use it.
 */
export async function seededDatabase(emails: string[]) {
  const pgUrl = process.env.DATABASE_URL
  const dataDir = pgUrl ? undefined : mkdtempSync(join(tmpdir(), 'nowatch-proc-'))
  const database: Database & { url?: string } = pgUrl ? await freshDatabase() : await openDatabase({ dataDir })
  if (!pgUrl) await database.migrate()
  const clientToken = await seedUsers(database, emails)
  if (!pgUrl) await database.close()
  const env: Record<string, string> = pgUrl
    ? { DATABASE_URL: database.url as string }
    : { NODE_ENV: 'development', DATA_DIR: dataDir as string }
  return {
    env,
    clientToken,
    /** Drops the PostgreSQL database (PGlite folders live in the temp dir). */
    async close() {
      if (pgUrl) await database.close()
    },
  }
}

/**
 * A client app and one verified user per e-mail (password SEED_PASSWORD) in a migrated database that a server
 * process uses or will use; the client's x-auth-token.
 */
export async function seedUsers(database: Database, emails: string[], clientName = 'process test'): Promise<string> {
  const client = await createClientAppRepository(database.db).create(clientName)
  const users = createUserRepository(database.db)
  const now = new Date()
  const passwordHash = await hashPassword(SEED_PASSWORD, 4)
  for (const email of emails) {
    await users.create({
      email,
      passwordHash,
      firstName: 'Seed',
      lastName: 'User',
      tocAcceptedAt: now,
      privacyPolicyAcceptedAt: now,
      emailVerifiedAt: now,
    })
  }
  return client.x_auth_token
}

export async function loginOver(
  url: string,
  clientToken: string,
  email: string,
): Promise<{ access: string; refresh: string }> {
  const res = await fetch(`${url}/v2/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-auth-token': clientToken },
    body: JSON.stringify({ email, password: SEED_PASSWORD }),
  })
  if (!res.ok) throw new Error(`login ${res.status}: ${await res.text()}`)
  return (await res.json()) as { access: string; refresh: string }
}
