import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { eq } from 'drizzle-orm'
import { SMTPServer } from 'smtp-server'
import t from 'tap'
import { mailOutbox } from '../../db/schema/index.ts'
import { buildTestApp } from '../helpers/app.ts'
import { createClient } from '../helpers/fixtures.ts'
import { clientPost } from '../helpers/http.ts'

interface Received {
  to: string[]
  raw: string
}

async function startSmtp(port = 0) {
  const received: Received[] = []
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      let raw = ''
      stream.on('data', (c: Buffer) => {
        raw += c.toString('utf8')
      })
      stream.on('end', () => {
        received.push({ to: session.envelope.rcptTo.map((r) => r.address), raw })
        callback()
      })
    },
  })
  server.listen(port, '127.0.0.1')
  await once(server.server, 'listening')
  return { server, received, port: (server.server.address() as AddressInfo).port }
}

t.test('a reset code really arrives over SMTP and works', async (t) => {
  const smtp = await startSmtp()
  t.teardown(() => new Promise<void>((r) => smtp.server.close(() => r())))
  const app = await buildTestApp(t, {
    env: { SMTP_URL: `smtp://127.0.0.1:${smtp.port}`, MAIL_FROM: 'NOWATCH <no-reply@nowatch.test>' },
  })
  const post = clientPost(app, (await createClient(app)).x_auth_token)

  await post('/v1/auth/register', {
    email: 'mail@example.com',
    password: 'Kelp-Forest-9!',
    first_name: 'Mail',
    last_name: 'Test',
    toc_accepted_at: '2024-07-01T12:34:56Z',
    privacy_policy_accepted_at: '2024-07-01T12:34:56Z',
  })
  await post('/v1/auth/forgot_password', { email: 'mail@example.com' })
  // Both mails are queued just after their answers (plugins/after-answer.ts).
  await app.afterAnswer.idle()
  t.same(await app.mailer.flush(), { sent: 2, failed: 0 })
  t.equal(smtp.received.length, 2)
  // The flush sends both at once, so they may arrive in either order.
  const reset = smtp.received.find((m) => /Subject: Your NOWATCH password reset code/.test(m.raw))
  t.ok(reset, 'the reset mail arrived')
  t.same(reset?.to, ['mail@example.com'])
  t.match(reset?.raw, /From: NOWATCH <no-reply@nowatch.test>/)
  const code = reset?.raw.match(/code is: (\d{6})/)?.[1]
  t.match(code, /^\d{6}$/)
  const res = await post('/v1/auth/confirm_new_password', {
    email: 'mail@example.com',
    verification_code: code,
    new_password: 'Coral-Reef-77!',
  })
  t.same(res.json(), { status: 'success' })
  const rows = await app.db.select().from(mailOutbox).where(eq(mailOutbox.to, 'mail@example.com'))
  t.ok(rows.filter((r) => r.kind !== 'password_changed').every((r) => r.status === 'sent' && r.sentAt))
})

t.test('no message is lost while SMTP is down: it stays queued and is sent once it is back', async (t) => {
  const probe = await startSmtp()
  const port = probe.port
  await new Promise<void>((r) => probe.server.close(() => r()))
  const app = await buildTestApp(t, { env: { SMTP_URL: `smtp://127.0.0.1:${port}` } })
  const post = clientPost(app, (await createClient(app)).x_auth_token)
  await post('/v1/auth/register', {
    email: 'later@example.com',
    password: 'Kelp-Forest-9!',
    first_name: 'Later',
    last_name: 'Test',
    toc_accepted_at: '2024-07-01T12:34:56Z',
    privacy_policy_accepted_at: '2024-07-01T12:34:56Z',
  })
  await app.afterAnswer.idle()
  t.same(await app.mailer.flush(), { sent: 0, failed: 1 })
  const [pending] = await app.db.select().from(mailOutbox).where(eq(mailOutbox.to, 'later@example.com'))
  t.equal(pending.status, 'pending')
  t.equal(pending.attempts, 1)
  t.match(pending.lastError, /ECONNREFUSED|connect/)

  const smtp = await startSmtp(port)
  t.teardown(() => new Promise<void>((r) => smtp.server.close(() => r())))
  // The retry is scheduled with backoff; make it due now instead of waiting.
  await app.db
    .update(mailOutbox)
    .set({ nextAttemptAt: new Date(Date.now() - 1000) })
    .where(eq(mailOutbox.id, pending.id))
  t.same(await app.mailer.flush(), { sent: 1, failed: 0 })
  t.equal(smtp.received.length, 1)
  t.match(smtp.received[0].raw, /enter this code in the app: \d{6}/)
  t.same(await app.mailer.flush(), { sent: 0, failed: 0 }, 'sent once, not again')
})
