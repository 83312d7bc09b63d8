import { parseArgs } from 'node:util'
import { type Database, openDatabase } from './db/client.ts'
import { ConfigError, loadConfig } from './plugins/config.ts'
import { checkNewPasswordPolicy, hashPassword } from './routes/auth/passwords.ts'
import { createClientAppRepository } from './routes/clients/repository.ts'
import { revokeClientApp } from './routes/clients/revoke.ts'
import { createUserRepository } from './routes/user/repository.ts'

const USAGE = `Operator commands (npm run cli -- <command>):
  client create --name NAME                 create a client app; prints client_id, secret and x_auth_token as JSON
  client rotate --id CLIENT_ID [--overlap-s N]
                                            a new secret (printed as JSON); the old one works N more seconds
                                            (default CLIENT_SECRET_OVERLAP_S, 86400; 0 = stops at once)
  client revoke --id CLIENT_ID              revoke a client app and end every session opened through it
  admin create --email E --password P [--first-name F] [--last-name L]
                                            create an admin account (e-mail counted as verified)
  admin promote --email E                   give an existing account the admin role
  migrate                                   apply pending database migrations
`

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

const database: Database = await openDatabase({
  databaseUrl: config.DATABASE_URL,
  dataDir: config.DATA_DIR,
  poolMax: 2,
})
try {
  await database.migrate()
  const print = (v: unknown) => process.stdout.write(`${JSON.stringify(v, null, 2)}\n`)
  switch (command) {
    case 'migrate':
      print({ status: 'success', pending: await database.pendingMigrations() })
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
    case 'client revoke': {
      if (!values.id) fail('client revoke needs --id')
      const { client, ended } = await revokeClientApp(database.db, values.id)
      if (!client) fail('no client app has this id')
      print({ status: 'success', client_id: client.id, sessions_revoked: ended.length })
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
    default:
      fail(`Unknown command "${command}".\n\n${USAGE}`)
  }
} finally {
  await database.close()
}
