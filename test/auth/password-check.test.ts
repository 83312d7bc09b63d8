import { sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { backoffLeftS } from '../../routes/auth/password-check.ts'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'

t.test('the backoff curve is login’s', async (t) => {
  const now = Date.now()
  t.equal(backoffLeftS(4, new Date(now), now), 0, 'four failures: no wait')
  t.equal(backoffLeftS(5, new Date(now), now), 1)
  t.equal(backoffLeftS(7, new Date(now), now), 4)
  t.equal(backoffLeftS(30, new Date(now), now), 900, 'capped at 15 minutes')
  t.equal(backoffLeftS(6, new Date(now - 5000), now), 0, 'waited long enough')
  t.equal(backoffLeftS(100, new Date(now - 999_000), now), 3600, 'past the hard limit: the window')
})

t.test('wrong current passwords are counted per account, whatever the address', async (t) => {
  const app = await buildTestApp(t)
  const changePassword = (headers: object, old: string, ip: string) =>
    app.inject({
      method: 'POST',
      url: '/v1/auth/change_password',
      remoteAddress: ip,
      headers: headers as Record<string, string>,
      payload: { password_old: old, password_new: 'Brand-New-Pass-7!' },
    })
  const deleteAccount = (headers: object, password: string) =>
    app.inject({
      method: 'DELETE',
      url: '/v1/users/me',
      headers: headers as Record<string, string>,
      payload: { password },
    })
  const failures = async (userId: string) =>
    (
      await queryRows<{ n: number }>(
        app.db,
        sql`select count(*)::int as n from password_check_failures where user_id = ${userId}`,
      )
    )[0].n

  t.test('change password from rotating addresses: the sixth try waits', async (t) => {
    const a = await userWithToken(app)
    for (let i = 0; i < 5; i++) {
      const res = await changePassword(a.headers, `Guess-${i}-Pass!`, `203.0.113.${i + 1}`)
      t.equal(res.statusCode, 400)
      t.same(res.json().details[0], { field: 'password_old', problem: 'is not your current password' })
    }
    const res = await changePassword(a.headers, a.user.password, '198.51.100.77')
    t.equal(res.statusCode, 429, 'even the right password is not checked in backoff')
    t.equal(res.json().error, 'rate_limited')
    t.ok(Number(res.headers['retry-after']) >= 1)
    t.equal(await failures(a.user.id), 5, 'the refused try does not count')
  })

  t.test('the count is shared with account deletion', async (t) => {
    const a = await userWithToken(app)
    for (let i = 0; i < 3; i++)
      t.equal((await changePassword(a.headers, `Guess-${i}-Pass!`, '10.0.0.1')).statusCode, 400)
    for (let i = 0; i < 2; i++) t.equal((await deleteAccount(a.headers, `Guess-${i}-Pass!`)).statusCode, 400)
    const res = await deleteAccount(a.headers, a.user.password)
    t.equal(res.statusCode, 429)
    t.equal(res.json().error, 'rate_limited')
    const rows = await queryRows<{ purpose: string; n: number }>(
      app.db,
      sql`select purpose, count(*)::int as n from password_check_failures where user_id = ${a.user.id} group by 1 order by 1`,
    )
    t.same(rows, [
      { purpose: 'change_password', n: 3 },
      { purpose: 'delete_account', n: 2 },
    ])
  })

  t.test('once the wait is over the right password works and clears the count', async (t) => {
    const a = await userWithToken(app)
    for (let i = 0; i < 6; i++) await changePassword(a.headers, `Guess-${i}-Pass!`, '10.0.0.2')
    t.equal(await failures(a.user.id), 5)
    // Time passes (the failures are moved back rather than the test waiting).
    await app.db.execute(
      sql`update password_check_failures set created_at = created_at - interval '20 seconds' where user_id = ${a.user.id}`,
    )
    const res = await changePassword(a.headers, a.user.password, '10.0.0.2')
    t.equal(res.statusCode, 200, res.body)
    t.equal(await failures(a.user.id), 0)
  })

  t.test('another account is not affected', async (t) => {
    const a = await userWithToken(app)
    const b = await userWithToken(app)
    for (let i = 0; i < 8; i++) await changePassword(a.headers, `Guess-${i}-Pass!`, '10.0.0.3')
    const res = await changePassword(b.headers, b.user.password, '10.0.0.3')
    t.equal(res.statusCode, 200)
  })

  t.test('a burst of parallel guesses cannot all be checked before the first failure is counted', async (t) => {
    const a = await userWithToken(app)
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => changePassword(a.headers, `Guess-${i}-Pass!`, `192.0.2.${i + 1}`)),
    )
    const checked = answers.filter((r) => r.statusCode === 400).length
    const limited = answers.filter((r) => r.statusCode === 429).length
    t.equal(checked + limited, 20)
    t.ok(checked <= 6, `${checked} of 20 parallel guesses were checked`)
    t.equal(await failures(a.user.id), checked)
  })
})
