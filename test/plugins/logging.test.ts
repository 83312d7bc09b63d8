import { Writable } from 'node:stream'
import t from 'tap'
import { REDACT_PATHS, buildApp } from '../../app.ts'
import { LOG_SERIALIZERS, redactUrl } from '../../plugins/log-serializers.ts'
import { testConfig } from '../helpers/app.ts'
import { freshDatabase } from '../helpers/database.ts'
import { createClient, createUser, login } from '../helpers/fixtures.ts'

t.test('logs carry request ids and never credentials, tokens or codes', async (t) => {
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
    logger: {
      level: 'trace',
      stream,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: LOG_SERIALIZERS,
    },
  })
  t.teardown(async () => {
    await app.close()
    await database.close()
  })
  await app.ready()
  const client = await createClient(app)
  const user = await createUser(app)
  const tokens = await login(app, user, client.x_auth_token)
  await app.inject({
    method: 'POST',
    url: '/v1/auth/refresh',
    headers: { 'x-auth-token': client.x_auth_token, authorization: `Bearer ${tokens.access}` },
    payload: { refresh: tokens.refresh },
  })
  // The links from e-mails hold their code (and an address) in the URL.
  await app.inject({ method: 'GET', url: '/v1/auth/verify_email?email=linked%40example.com&code=654321' })
  await app.inject({ method: 'GET', url: '/v1/shared/invites/accept?code=SeCrEtInViTeCoDe' })
  await app.inject({
    method: 'GET',
    url: '/v1/group/00000000-0000-4000-8000-000000000000/invite/GrOuPcOdE/accept',
  })
  // Whatever a handler might log by mistake is censored too.
  app.log.info(
    {
      req: { headers: { authorization: 'Bearer abc', 'x-auth-token': 'xyz' } },
      body: { password: 'hunter2', code: '123456' },
    },
    'oops',
  )

  const all = lines.join('\n')
  t.ok(
    lines.some((l) => /"reqId":"[0-9a-f-]{36}"/.test(l)),
    'request lines carry the request id',
  )
  for (const secret of [
    user.password,
    tokens.access,
    tokens.refresh,
    client.x_auth_token,
    client.secret,
    'hunter2',
    '123456',
    'Bearer abc',
    '654321',
    'linked%40example.com',
    'SeCrEtInViTeCoDe',
    'GrOuPcOdE',
  ]) {
    t.notOk(all.includes(secret), `not logged: ${secret.slice(0, 12)}…`)
  }
  t.match(all, /\[redacted\]/)
  t.match(all, /"url":"\/v1\/auth\/verify_email\?email=\[redacted\]&code=\[redacted\]"/)
})

t.test('redactUrl keeps the path and the harmless parameters', async (t) => {
  t.equal(redactUrl('/v1/measurements?type=steps&limit=5'), '/v1/measurements?type=steps&limit=5')
  t.equal(redactUrl('/v1/x?limit=1&code=abc&email=a%40b.c'), '/v1/x?limit=1&code=[redacted]&email=[redacted]')
  t.equal(redactUrl('/v1/group/g1/invite/c0de/accept'), '/v1/group/g1/invite/[redacted]/accept')
})
