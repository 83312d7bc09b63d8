import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { RestoreError, backupDatabase, restoreDatabase } from './db/backup.ts'
import { type Database, openDatabaseForCli } from './db/client.ts'
import { DataDirBusyError } from './db/data-dir-lock.ts'
import { ConfigError, loadConfig } from './plugins/config.ts'
import { isOAuthScope } from './plugins/oauth-scopes.ts'
import { checkNewPasswordPolicy, hashPassword } from './routes/auth/passwords.ts'
import { createClientAppRepository } from './routes/clients/repository.ts'
import { revokeClientApp } from './routes/clients/revoke.ts'
import { compactMeasurements } from './routes/measurement/compaction.ts'
import { applyRawRetention, parseRawRetention } from './routes/measurement/retention.ts'
import { createOAuthClientRepository } from './routes/oauth/repository.ts'
import { redirectUriProblem, toOAuthClient } from './routes/oauth/schemas.ts'
import { createUserRepository } from './routes/user/repository.ts'
import { OperatorError, WEBHOOK_USAGE, webhookCommand } from './routes/webhooks/operator.ts'
import { createWebhookRepository } from './routes/webhooks/repository.ts'

const USAGE = `Operator commands (npm run cli -- <command>):
  client create --name NAME                 create a client app; prints client_id, secret and x_auth_token as JSON
  client rotate --id CLIENT_ID [--overlap-s N]
                                            a new secret (printed as JSON); the old one works N more seconds
                                            (default CLIENT_SECRET_OVERLAP_S, 86400; 0 = stops at once)
  client list                               list the client apps (id, name, dates; never their secrets)
  client revoke --id CLIENT_ID              revoke a client app and end every session opened through it
  oauth-client create --name NAME --redirect-uri URI [--redirect-uri URI …] --scope "S1 S2 …" [--public]
                                            register a third-party app (OAuth client); prints client_id and, unless
                                            --public, client_secret (shown once) as JSON
  oauth-client rotate --id CLIENT_ID [--overlap-s N]
                                            a new client_secret (printed as JSON); the old one works N more
                                            seconds (default CLIENT_SECRET_OVERLAP_S, 86400; 0 = stops at once)
  oauth-client list                         list the OAuth clients (never their secrets)
  oauth-client revoke --id CLIENT_ID        revoke an OAuth client and delete every grant and token it holds
  admin create --email E --password P [--first-name F] [--last-name L]
                                            create an admin account (e-mail counted as verified)
  admin promote --email E                   give an existing account the admin role
  migrate                                   apply pending database migrations
  backup --out FILE                         a consistent backup of every table (gzip'd JSON lines); works
                                            while the server runs (through its socket on the embedded database)
  measurements compact                      compact every closed hour of raw samples into blocks now (waits for
                                            each user's lock; prints users, blocks, samples moved as JSON)
  measurements retention                    apply MEASUREMENT_RAW_RETENTION now (delete raw samples past it,
                                            drop months every type is past); prints samples and partitions
  restore --in FILE                         load a backup into an empty database (a fresh DATA_DIR, or an
                                            empty PostgreSQL database); the server must not be running on it
${WEBHOOK_USAGE}`

function fail(message: string): never {
  process.stderr.write(`${message}\n`)
  process.exit(1)
}

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    name: { type: 'string' },
    id: { type: 'string' },
    email: { type: 'string' },
    password: { type: 'string' },
    'first-name': { type: 'string' },
    'last-name': { type: 'string' },
    'overlap-s': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
    scope: { type: 'string' },
    public: { type: 'boolean' },
    out: { type: 'string' },
    in: { type: 'string' },
    client: { type: 'string' },
    url: { type: 'string' },
    events: { type: 'string' },
    description: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
})
const command = positionals.join(' ')
if (values.help || !command) {
  process.stdout.write(USAGE)
  process.exit(0)
}

let config: ReturnType<typeof loadConfig>
try {
  config = loadConfig()
} catch (err) {
  if (err instanceof ConfigError) fail(err.message)
  throw err
}

// On the embedded database while the server runs, this goes through the server's socket in DATA_DIR.
let database: Database
try {
  database = await openDatabaseForCli({
    databaseUrl: config.DATABASE_URL,
    directUrl: config.DATABASE_DIRECT_URL,
    dataDir: config.DATA_DIR,
  })
} catch (err) {
  if (err instanceof DataDirBusyError) fail(`${err.message}\n(Its CLI socket did not answer.)`)
  const where = config.DATABASE_URL ? 'DATABASE_URL' : `DATA_DIR ${config.DATA_DIR}`
  fail(`Cannot open the database (${where}): ${(err as Error).message}`)
}
try {
  // The server that owns the folder has migrated it already.
  if (database.via !== 'socket') await database.migrate()
  const print = (v: unknown) => process.stdout.write(`${JSON.stringify(v, null, 2)}\n`)
  if (positionals[0] === 'webhook' && positionals.length === 2) {
    try {
      print(await webhookCommand(database.db, config, positionals[1], values))
    } catch (err) {
      if (err instanceof OperatorError) fail(err.message)
      throw err
    }
  } else
    switch (command) {
      case 'migrate':
        print({ status: 'success', pending: await database.pendingMigrations() })
        break
      case 'measurements compact':
        print(await compactMeasurements(database.db, { before: Date.now(), wait: true }))
        break
      case 'measurements retention':
        print(await applyRawRetention(database.db, parseRawRetention(config.MEASUREMENT_RAW_RETENTION)))
        break
      case 'client create': {
        if (!values.name) fail('client create needs --name')
        print(await createClientAppRepository(database.db).create(values.name))
        break
      }
      case 'client rotate': {
        if (!values.id) fail('client rotate needs --id')
        const overlap = values['overlap-s'] ?? String(config.CLIENT_SECRET_OVERLAP_S)
        if (!/^\d{1,7}$/.test(overlap) || Number(overlap) > 2592000) fail('--overlap-s must be 0..2592000 seconds')
        const clients = createClientAppRepository(database.db)
        const issued = await clients.rotate(values.id, Number(overlap))
        if (!issued) fail((await clients.get(values.id)) ? 'this client app is revoked' : 'no client app has this id')
        print({ ...issued, previous_secret_valid_for_s: Number(overlap) })
        break
      }
      case 'client list': {
        const clients = createClientAppRepository(database.db)
        const all = []
        let after: { at: Date; id: string } | undefined
        for (;;) {
          const page = await clients.list(100, after)
          all.push(
            ...page.map((c) => ({
              client_id: c.id,
              name: c.name,
              created: c.createdAt.toISOString(),
              rotated: c.rotatedAt?.toISOString() ?? null,
              revoked: c.revokedAt?.toISOString() ?? null,
            })),
          )
          if (page.length < 100) break
          const last = page[page.length - 1]
          after = { at: last.createdAt, id: last.id }
        }
        print(all)
        break
      }
      case 'client revoke': {
        if (!values.id) fail('client revoke needs --id')
        const { client, ended } = await revokeClientApp(database.db, values.id)
        if (!client) fail('no client app has this id')
        print({ status: 'success', client_id: client.id, sessions_revoked: ended.length })
        break
      }
      case 'oauth-client create': {
        if (!values.name?.trim()) fail('oauth-client create needs --name')
        const uris = values['redirect-uri'] ?? []
        if (uris.length === 0) fail('oauth-client create needs at least one --redirect-uri')
        for (const uri of uris) {
          const problem = redirectUriProblem(uri)
          if (problem) fail(`--redirect-uri ${uri}: ${problem}`)
        }
        const scopes = [...new Set((values.scope ?? '').split(/\s+/).filter(Boolean))]
        if (scopes.length === 0) fail('oauth-client create needs --scope "…" (space-separated)')
        const unknown = scopes.filter((s) => !isOAuthScope(s))
        if (unknown.length) fail(`unknown scope(s): ${unknown.join(', ')}`)
        const { row, secret } = await createOAuthClientRepository(database.db).create({
          name: values.name.trim(),
          redirectUris: uris,
          scopes,
          public: values.public === true,
        })
        print({ ...toOAuthClient(row), client_secret: secret })
        break
      }
      case 'oauth-client list': {
        const clients = createOAuthClientRepository(database.db)
        const all = []
        let after: { at: Date; id: string } | undefined
        for (;;) {
          const page = await clients.list(100, after)
          all.push(...page.map(toOAuthClient))
          if (page.length < 100) break
          const last = page[page.length - 1]
          after = { at: last.createdAt, id: last.id }
        }
        print(all)
        break
      }
      case 'oauth-client rotate': {
        if (!values.id) fail('oauth-client rotate needs --id')
        const overlap = values['overlap-s'] ?? String(config.CLIENT_SECRET_OVERLAP_S)
        if (!/^\d{1,7}$/.test(overlap) || Number(overlap) > 2592000) fail('--overlap-s must be 0..2592000 seconds')
        const oauthClientRepo = createOAuthClientRepository(database.db)
        const rotated = await oauthClientRepo.rotate(values.id, Number(overlap))
        if (!rotated) {
          const existing = await oauthClientRepo.get(values.id)
          fail(
            !existing
              ? 'no OAuth client has this id'
              : existing.revokedAt
                ? 'this OAuth client is revoked'
                : 'a public client has no secret',
          )
        }
        print({ ...toOAuthClient(rotated.row), client_secret: rotated.secret })
        break
      }
      case 'oauth-client revoke': {
        if (!values.id) fail('oauth-client revoke needs --id')
        // authorization.revoked for each grant that ends, in the revoking transaction (as the admin API).
        const revoked = await database.db.transaction(async (tx) => {
          const r = await createOAuthClientRepository(database.db).revoke(values.id as string, tx)
          if (r) await createWebhookRepository(database.db).enqueueAuthorizationRevoked(tx, r.grants)
          return r
        })
        if (!revoked) fail('no OAuth client has this id')
        print({ status: 'success', ...toOAuthClient(revoked) })
        break
      }
      case 'admin create': {
        const { email, password } = values
        if (!email || !password) fail('admin create needs --email and --password')
        const problems = checkNewPasswordPolicy(password)
        if (problems.length) fail(`The password does not meet the policy: ${problems.join('; ')}`)
        const users = createUserRepository(database.db)
        const now = new Date()
        const user = await users.create({
          email,
          passwordHash: await hashPassword(password, config.BCRYPT_COST),
          role: 'admin',
          firstName: values['first-name'] ?? 'Admin',
          lastName: values['last-name'] ?? 'Admin',
          tocAcceptedAt: now,
          privacyPolicyAcceptedAt: now,
          emailVerifiedAt: now,
        })
        if (!user) fail('An account with this e-mail exists already; use `admin promote --email`.')
        print({ id: user.id, email: user.email, role: user.role })
        break
      }
      case 'admin promote': {
        if (!values.email) fail('admin promote needs --email')
        const users = createUserRepository(database.db)
        const user = await users.findByEmail(values.email)
        if (!user) fail('no account has this e-mail')
        await users.setRole(user.id, 'admin')
        print({ id: user.id, email: user.email, role: 'admin' })
        break
      }
      case 'backup': {
        if (!values.out) fail('backup needs --out FILE')
        const file = resolve(values.out)
        const progress = (line: string) => process.stderr.write(`${line}\n`)
        const tables = await backupDatabase(database.db, file, progress)
        const rows = Object.values(tables).reduce((a, b) => a + b, 0)
        print({ status: 'success', file, rows, tables })
        break
      }
      case 'restore': {
        if (!values.in) fail('restore needs --in FILE')
        if (database.via === 'socket') {
          fail(
            `DATA_DIR ${config.DATA_DIR} is in use by the running server: stop it, or restore into another DATA_DIR.`,
          )
        }
        const file = resolve(values.in)
        const progress = (line: string) => process.stderr.write(`${line}\n`)
        try {
          const tables = await restoreDatabase(database.db, file, progress)
          const rows = Object.values(tables).reduce((a, b) => a + b, 0)
          print({ status: 'success', file, rows, tables })
        } catch (err) {
          if (err instanceof RestoreError) fail(`restore: ${err.message}`)
          throw err
        }
        break
      }
      default:
        fail(`Unknown command "${command}".\n\n${USAGE}`)
    }
} finally {
  await database.close()
}
