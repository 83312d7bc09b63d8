import { Writable } from 'node:stream'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { REDACT_PATHS, buildApp } from '../../app.ts'
import { testConfig } from '../helpers/app.ts'
import { freshDatabase } from '../helpers/database.ts'
import { PASSWORD, codeFromMail, createClient } from '../helpers/fixtures.ts'

/*
 * A representative session with every log line captured at trace level: register, verify, log in,
 * refresh, reset the password, write a journal note, change the profile, then database writes that fail
 * (a trigger raises inside the insert, as a constraint or a full disk would). The log must carry
 * none of what the session handled: e-mail addresses, passwords, bcrypt hashes, JWTs, x-auth-token
 * values, verification and reset codes, the note.
 */
t.test('the log of a whole session carries no personal data or secret', async (t) => {
  const lines: string[] = []
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(chunk.toString())
      cb()
    },
  })
  const database = await freshDatabase()
  const app = await buildApp({
    config: testConfig(),
    database,
    logger: { level: 'trace', stream, redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
  })
  t.teardown(async () => {
    await app.close()
    await database.close()
  })
  await app.ready()

  const client = await createClient(app)
  const clientHeaders = { 'x-auth-token': client.x_auth_token }
  const email = 'patrick.star@bikinibottom.example'
  const newPassword = 'Rock-Bottom-77?'
  const note = 'Felt dizzy after the new medication, talked to Dr. Krabs'
  const post = (url: string, payload: object, headers: Record<string, string> = clientHeaders) =>
    app.inject({ method: 'POST', url, headers, payload })
  const expectStatus = (res: { statusCode: number; body: string }, status: number, what: string) =>
    t.equal(res.statusCode, status, `${what}: ${res.statusCode} ${res.statusCode === status ? '' : res.body}`)

  expectStatus(
    await post('/v1/auth/register', {
      email,
      password: PASSWORD,
      first_name: 'Patrick',
      last_name: 'Star',
      toc_accepted_at: '2024-07-01T12:34:56Z',
      privacy_policy_accepted_at: '2024-07-01T12:34:56Z',
    }),
    200,
    'register',
  )
  const verificationCode = await codeFromMail(app, email, 'email_verification')
  expectStatus(await post('/v1/auth/verify_email', { email, code: verificationCode }), 200, 'verify')
  const loginRes = await post('/v2/auth/login', { email, password: PASSWORD })
  expectStatus(loginRes, 200, 'login')
  const first = loginRes.json()
  const refreshed = await post(
    '/v1/auth/refresh',
    { refresh: first.refresh },
    { ...clientHeaders, authorization: `Bearer ${first.access}` },
  )
  expectStatus(refreshed, 200, 'refresh')
  const tokens = refreshed.json()
  const auth = { authorization: `Bearer ${tokens.access}` }

  expectStatus(await post('/v1/checkins', { mood: 2, note }, auth), 201, 'journal note')
  expectStatus(
    await app.inject({ method: 'PATCH', url: '/v1/users/me', headers: auth, payload: { date_of_birth: '1984-05-06' } }),
    200,
    'profile',
  )

  // A wrong password and a replayed refresh token: the failure paths log too.
  expectStatus(await post('/v2/auth/login', { email, password: 'Wrong-Password-1!' }), 401, 'failed login')
  // Replayed after the next rotation too, so outside the reuse window's same-pair answer.
  expectStatus(await post('/v1/auth/refresh', { refresh: tokens.refresh }), 200, 'second refresh')
  expectStatus(await post('/v1/auth/refresh', { refresh: first.refresh }), 401, 'replayed refresh')
  expectStatus(await post('/v1/auth/forgot_password', { email }), 200, 'forgot password')
  const resetCode = await codeFromMail(app, email, 'password_reset')
  expectStatus(
    await post('/v1/auth/confirm_new_password', { email, verification_code: resetCode, new_password: newPassword }),
    200,
    'reset password',
  )
  const again = await post('/v2/auth/login', { email, password: newPassword })
  expectStatus(again, 200, 'login with the new password')
  const last = again.json()

  // The mail worker's pass: the dev outbox logs what it "sends".
  t.ok((await app.mailer.flush()).sent >= 3, 'the queued mails went through the dev outbox')

  // Failing writes: every insert into users and checkins now raises inside the database.
  await app.db.execute(
    sql.raw(`create function pg_temp_fail() returns trigger language plpgsql as $$
      begin raise exception 'disk quota exceeded' using errcode = '53100'; end $$`),
  )
  await app.db.execute(
    sql.raw('create trigger fail_users before insert on users for each row execute function pg_temp_fail()'),
  )
  await app.db.execute(
    sql.raw('create trigger fail_checkins before insert on checkins for each row execute function pg_temp_fail()'),
  )
  const otherEmail = 'sandy.cheeks@treedome.example'
  const failedRegister = await post('/v1/auth/register', {
    email: otherEmail,
    password: PASSWORD,
    first_name: 'Sandy',
    last_name: 'Cheeks',
    toc_accepted_at: '2024-07-01T12:34:56Z',
    privacy_policy_accepted_at: '2024-07-01T12:34:56Z',
  })
  expectStatus(failedRegister, 500, 'register on a failing database')
  const failedNote = await post('/v1/checkins', { mood: 1, note }, { authorization: `Bearer ${last.access}` })
  expectStatus(failedNote, 500, 'check-in on a failing database')
  t.match(failedNote.json(), { error: 'internal_error' })

  const all = lines.join('')
  const failure = lines
    .map((l) => JSON.parse(l))
    .find((l) => l.msg === 'unhandled error' && l.err?.sqlState === '53100')
  t.ok(failure, 'the failed query is logged')
  t.match(
    failure,
    { reqId: String, err: { sqlState: '53100', type: 'DrizzleQueryError' } },
    'by request id and SQL state',
  )

  const secrets: Array<[string, string | RegExp]> = [
    ['the e-mail address', email],
    ['the failed registration e-mail address', otherEmail],
    ['the password', PASSWORD],
    ['the new password', newPassword],
    ['the verification code', verificationCode],
    ['the reset code', resetCode],
    ['the journal note', note],
    ['the client token', client.x_auth_token],
    ['the client secret', client.secret],
    ['an access token', tokens.access],
    ['a refresh token', first.refresh],
    ['any bcrypt hash', /\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}/],
    ['any JWT', /eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}/],
    ['a birth date', '1984-05-06'],
  ]
  for (const [what, needle] of secrets) {
    const hit = typeof needle === 'string' ? all.includes(needle) : needle.test(all)
    t.notOk(hit, `not in the log: ${what}`)
  }
  t.ok(lines.length > 20, `the scenario logged (${lines.length} lines)`)
})
