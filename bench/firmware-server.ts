/**
 * The API server as bench/firmware.ts runs it: the same buildApp as server.ts, plus one plain static-file
 * route (@fastify/static over FIRMWARE_DIR) to compare the firmware download route against. Seeds an admin
 * and a client app, prints them as one JSON line on stdout, then listens (on the HOST and PORT it is given). Not for production.
 */
import fastifyStatic from '@fastify/static'
import { buildApp } from '../app.ts'
import { hashPassword } from '../routes/auth/passwords.ts'
import { createClientAppRepository } from '../routes/clients/repository.ts'
import { firmwareDir } from '../routes/firmware/index.ts'
import { createUserRepository } from '../routes/user/repository.ts'

const app = await buildApp()
await app.register(fastifyStatic, { root: firmwareDir(app.config), prefix: '/bench-static/', decorateReply: false })

const password = 'Bench-Mark-42!'
const email = 'bench-admin@example.com'
const now = new Date()
await createUserRepository(app.db).create({
  email,
  passwordHash: await hashPassword(password, app.config.BCRYPT_COST),
  role: 'admin',
  firstName: 'Bench',
  lastName: 'Admin',
  tocAcceptedAt: now,
  privacyPolicyAcceptedAt: now,
  emailVerifiedAt: now,
})
const client = await createClientAppRepository(app.db).create('bench')

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => app.close().then(() => process.exit(0)))
}
// Before listening: once the server answers, its seed is on stdout (a synchronous write to a pipe on Linux).
process.stdout.write(`${JSON.stringify({ email, password, clientToken: client.x_auth_token })}\n`)
await app.listen({ port: app.config.PORT, host: app.config.HOST })
