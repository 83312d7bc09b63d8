import { randomBytes } from 'node:crypto'
import { and, desc, eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { mailOutbox } from '../../db/schema/index.ts'
import { hashPassword } from '../../routes/auth/passwords.ts'
import { createClientAppRepository } from '../../routes/clients/repository.ts'
import { createUserRepository } from '../../routes/user/repository.ts'

/** One-line builders so a test reads like the story it checks. */

export const PASSWORD = 'Tide-Pool-42!'

export async function createClient(app: FastifyInstance, name = 'test app') {
  return createClientAppRepository(app.db).create(name)
}

export interface TestUser {
  id: string
  email: string
  password: string
  role: 'user' | 'admin'
}

let counter = 0
export function uniqueEmail(prefix = 'user'): string {
  return `${prefix}-${Date.now().toString(36)}-${++counter}-${randomBytes(3).toString('hex')}@example.com`
}

/** A verified account inserted directly (no e-mail round trip). */
export async function createUser(
  app: FastifyInstance,
  opts: {
    email?: string
    password?: string
    role?: 'user' | 'admin'
    verified?: boolean
    timeZone?: string
    createdAt?: Date
  } = {},
): Promise<TestUser> {
  const email = opts.email ?? uniqueEmail(opts.role ?? 'user')
  const password = opts.password ?? PASSWORD
  const now = new Date()
  const user = await createUserRepository(app.db).create({
    email,
    passwordHash: await hashPassword(password, app.config.BCRYPT_COST),
    role: opts.role ?? 'user',
    firstName: 'Test',
    lastName: 'User',
    tocAcceptedAt: now,
    privacyPolicyAcceptedAt: now,
    emailVerifiedAt: opts.verified === false ? null : now,
    timeZone: opts.timeZone ?? 'UTC',
    createdAt: opts.createdAt ?? now,
  })
  if (!user) throw new Error(`user ${email} exists`)
  return { id: user.id, email: user.email, password, role: user.role }
}

export interface Tokens {
  access: string
  refresh: string
  expiresIn: number
}

/**
 * Logs in through the real route and returns the tokens: an admin through the admin login (the only one
 * that gives admin power), everyone else through the user login.
 */
export async function login(
  app: FastifyInstance,
  user: { email: string; password: string; role?: 'user' | 'admin' },
  clientToken?: string,
): Promise<Tokens> {
  const token = clientToken ?? (await sharedClient(app))
  const res = await app.inject({
    method: 'POST',
    url: user.role === 'admin' ? '/v2/auth/login/admin' : '/v2/auth/login',
    headers: { 'x-auth-token': token },
    payload: { email: user.email, password: user.password },
  })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

const clients = new WeakMap<FastifyInstance, Promise<string>>()
/** One client app per app instance, made on first use. */
export function sharedClient(app: FastifyInstance): Promise<string> {
  let c = clients.get(app)
  if (!c) {
    c = createClient(app).then((x) => x.x_auth_token)
    clients.set(app, c)
  }
  return c
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

/**
 * The one user-and-request helper of the domain tests: a user, its tokens and bearer header, and `call`,
 * a request as that user answering `{ status, body }` (`await alice.call('POST', '/v1/checkins', { mood: 3 })`).
 * A test that needs the raw response (headers, a non-JSON body) passes `headers` to `app.inject` itself.
 */
export async function userWithToken(app: FastifyInstance, opts: Parameters<typeof createUser>[1] = {}) {
  const user = await createUser(app, opts)
  const tokens = await login(app, user)
  const headers = { authorization: `Bearer ${tokens.access}` }
  async function call(method: Method, url: string, payload?: unknown) {
    const res = await app.inject({
      method,
      url,
      headers,
      ...(payload === undefined ? {} : { payload: payload as object }),
    })
    return { status: res.statusCode, body: res.body ? res.json() : undefined }
  }
  return { user, tokens, headers, call }
}

export type UserWithToken = Awaited<ReturnType<typeof userWithToken>>

export function bearer(tokens: { access: string }) {
  return { authorization: `Bearer ${tokens.access}` }
}

/** The newest queued e-mail to an address (optionally of a kind). */
export async function lastMail(app: FastifyInstance, to: string, kind?: string) {
  // Some mail is queued after the answer (plugins/after-answer.ts): let that work finish first.
  await app.afterAnswer.idle()
  const [row] = await app.db
    .select()
    .from(mailOutbox)
    .where(and(eq(mailOutbox.to, to.toLowerCase()), kind ? eq(mailOutbox.kind, kind) : undefined))
    .orderBy(desc(mailOutbox.createdAt))
    .limit(1)
  return row ?? null
}

/** The first 6-digit code in the newest e-mail of that kind. */
export async function codeFromMail(app: FastifyInstance, to: string, kind: string): Promise<string> {
  const mail = await lastMail(app, to, kind)
  // The address itself may hold six digits in a row (uniqueEmail's random hex part): not the code.
  const text = mail?.text.replaceAll(encodeURIComponent(to), '').replaceAll(to, '')
  const code = text?.match(/\b(\d{6})\b/)?.[1]
  if (!code) throw new Error(`no ${kind} code mailed to ${to}`)
  return code
}
