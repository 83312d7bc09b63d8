import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { createAccountDeletionService } from '../../routes/account/deletion.ts'
import { buildTestApp } from '../helpers/app.ts'
import { freshDatabase } from '../helpers/database.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { ingest, series, upload } from '../helpers/measurement.ts'

// The row table has no foreign key to users (its check ran once per sample; db/schema/measurement.ts): account
// deletion deletes the rows, and an upload racing the deletion must not leave samples of an account that is gone.
// Two servers on one database, so that the uploading one still holds the session in its cache while the other
// deletes the account (the cache of the deleting process is dropped at once).

const skip = process.env.DATABASE_URL ? false : 'PostgreSQL only (DATABASE_URL is not set): two connections at once'
const T0 = Date.parse('2024-05-10T10:00:00Z')

t.test('an upload racing the deletion of its account stores nothing and answers 401', { skip }, async (t) => {
  const database = await freshDatabase()
  t.teardown(() => database.close())
  const env = { SESSION_CACHE_TTL_MS: '10000', MEASUREMENT_INGEST_BLOCKS: 'false' }
  const uploading = await buildTestApp(t, { database, env })
  const deleting = await buildTestApp(t, { database, env })
  const rows = async (userId: string) =>
    (
      await queryRows<{ n: number }>(
        deleting.db,
        sql`select count(*)::int as n from measurements where user_id = ${userId}`,
      )
    )[0].n
  for (const mode of ['grouped', 'alone'] as const) {
    const u = await userWithToken(uploading)
    const other = await userWithToken(uploading)
    // The session is in the uploading server's cache now, and the month's partition exists.
    await ingest(
      uploading,
      u.headers,
      series('heart_rate', T0, 60, (i) => 60 + (i % 9)),
      'watch',
    )
    t.equal(await rows(u.user.id), 60)

    let entered!: () => void
    const inside = new Promise<void>((r) => {
      entered = r
    })
    let release!: () => void
    const held = new Promise<void>((r) => {
      release = r
    })
    // The deletion stops just before its commit: the user row is deleted (locked) and so are its samples.
    const deletion = createAccountDeletionService(deleting).deleteAccount(u.user.id, async () => {
      entered()
      await held
    })
    await inside
    const next = series('heart_rate', T0 + 60_000, 60, (i) => 70 + (i % 9))
    const racing =
      mode === 'grouped'
        ? Promise.all([upload(uploading, u.headers, next, 'watch'), upload(uploading, other.headers, next, 'watch')])
        : Promise.all([upload(uploading, u.headers, next, 'watch')])
    // The upload inserts its rows, then waits for the deletion's lock on the user row (the rollup's foreign key).
    await sleep(300)
    release()
    t.ok(await deletion, 'the account is deleted')
    const [res, beside] = await racing
    t.equal(res.statusCode, 401, `${mode}: the upload is refused`)
    t.equal(res.json().error, 'unauthorized')
    t.equal(await rows(u.user.id), 0, `${mode}: no sample of the deleted account is left`)
    if (beside) {
      t.same(beside.json(), { accepted: 60, duplicates: 0 }, 'the other user of the group is stored')
      t.equal(await rows(other.user.id), 60)
    }
  }
})
