import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import type pg from 'pg'
import t from 'tap'
import { queryRows } from '../../db/client.ts'
import { compactMeasurements } from '../../routes/measurement/compaction.ts'
import { groupCommit } from '../../routes/measurement/group-commit.ts'
import { ensurePartitions } from '../../routes/measurement/partitions.ts'
import {
  type GroupStored,
  type GroupUpload,
  NO_DEVICE,
  createMeasurementRepository,
} from '../../routes/measurement/repository.ts'
import { buildTestApp } from '../helpers/app.ts'
import { freshDatabase } from '../helpers/database.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { counts, dataset, everySample, quarters, rounded, snapshot } from '../helpers/measurement-store.ts'
import { type Sample, series, upload } from '../helpers/measurement.ts'

// Uploads committed as groups (routes/measurement/group-commit.ts, issue 23b): on PostgreSQL, uploads of
// different users that wait while other upload statements run go as one statement. Each upload must still
// answer and store exactly what it would alone: its own accepted and duplicates, all-or-nothing, its own
// change log entries; one user's uploads never share a statement; a group that fails leaves nothing and its
// uploads run again alone.

const T0 = Date.parse('2024-05-10T10:00:00Z')
const HOUR = 3600_000

/** A controllable run: each call waits until the test releases it, and records the groups it was given. */
function gate<T>() {
  const groups: T[][] = []
  const waiting: Array<() => void> = []
  let fail: ((items: T[]) => unknown) | undefined
  return {
    groups,
    failWith(f: (items: T[]) => unknown) {
      fail = f
    },
    run: (items: T[]) =>
      new Promise<string[]>((resolve, reject) => {
        groups.push(items)
        waiting.push(() => {
          const err = fail?.(items)
          if (err) reject(err)
          else resolve(items.map((i) => `done ${String(i)}`))
        })
      }),
    /** Lets the oldest waiting run finish; answers once the callbacks have run. */
    async release() {
      waiting.shift()?.()
      await new Promise((r) => setImmediate(r))
    },
  }
}

t.test('the group commit itself', async (t) => {
  t.test('a lone item runs at once; items waiting meanwhile go as one group', async (t) => {
    const g = gate<string>()
    const commit = groupCommit({ inFlight: 1, maxWeight: 100, weight: () => 1, key: (s) => s, run: g.run })
    const first = commit.submit('a')
    t.same(g.groups, [['a']], 'nothing to wait for: the first runs alone, at once')
    const rest = ['b', 'c', 'd'].map((x) => commit.submit(x))
    t.equal(g.groups.length, 1, 'the others wait while one statement runs')
    await g.release()
    t.equal(await first, 'done a')
    t.same(g.groups[1], ['b', 'c', 'd'], 'then one group of all that waited, in arrival order')
    await g.release()
    t.same(await Promise.all(rest), ['done b', 'done c', 'done d'], 'each its own answer')
  })

  t.test('two statements in flight, then groups', async (t) => {
    const g = gate<string>()
    const commit = groupCommit({ inFlight: 2, maxWeight: 100, weight: () => 1, key: (s) => s, run: g.run })
    const all = ['a', 'b', 'c', 'd', 'e'].map((x) => commit.submit(x))
    t.same(g.groups, [['a'], ['b']])
    await g.release()
    t.same(g.groups[2], ['c', 'd', 'e'])
    await g.release()
    await g.release()
    t.same(await Promise.all(all), ['done a', 'done b', 'done c', 'done d', 'done e'])
  })

  t.test('one key never twice in a group, and its items keep their order', async (t) => {
    const g = gate<string>()
    const commit = groupCommit({
      inFlight: 1,
      maxWeight: 100,
      weight: () => 1,
      key: (s) => s.slice(0, 1),
      run: g.run,
    })
    const all = ['x0', 'a1', 'b1', 'a2', 'c1', 'a3', 'b2'].map((x) => commit.submit(x))
    await g.release()
    t.same(g.groups[1], ['a1', 'b1', 'c1'], 'the first of each key')
    await g.release()
    t.same(g.groups[2], ['a2', 'b2'])
    await g.release()
    t.same(g.groups[3], ['a3'])
    await g.release()
    t.equal((await Promise.all(all)).length, 7)
  })

  t.test('a group holds up to maxWeight; a heavier item goes alone', async (t) => {
    const g = gate<number>()
    const commit = groupCommit({ inFlight: 1, maxWeight: 10, weight: (n) => n, key: String, run: g.run })
    const all = [1, 4, 5, 3, 25, 2].map((n) => commit.submit(n))
    await g.release()
    t.same(g.groups[1], [4, 5], '4 + 5 fit, 3 more would not')
    await g.release()
    t.same(g.groups[2], [3, 2], '25 would not fit with 3; 2 does (order is kept per key, not across keys)')
    await g.release()
    t.same(g.groups[3], [25], 'heavier than maxWeight: alone')
    await g.release()
    t.equal((await Promise.all(all)).length, 6)
  })

  t.test('a failed group: each item again alone, and only the bad one fails', async (t) => {
    const g = gate<string>()
    g.failWith((items) => (items.includes('bad') ? new Error(`refused: ${items.join('+')}`) : undefined))
    const refused: number[] = []
    const commit = groupCommit({
      inFlight: 1,
      maxWeight: 100,
      weight: () => 1,
      key: (s) => s,
      run: g.run,
      onRefused: (_, n) => refused.push(n),
    })
    const first = commit.submit('first')
    // Settled as they come (a rejection must have its handler before it happens).
    const rest = ['a', 'bad', 'b'].map((x) => commit.submit(x).catch((err: Error) => err))
    await g.release()
    await first
    t.same(g.groups[1], ['a', 'bad', 'b'])
    await g.release()
    t.same(g.groups.slice(2), [['a']], 'the group refused: its items queue again, alone, first')
    await g.release()
    await g.release()
    await g.release()
    t.same(g.groups.slice(2), [['a'], ['bad'], ['b']])
    t.equal(await rest[0], 'done a')
    t.match(await rest[1], { message: 'refused: bad' }, 'its own error, as alone')
    t.same(refused, [3], "told once, for the group of three (the lone failure is its upload's own)")
    t.equal(await rest[2], 'done b')
  })
})

const skip = process.env.DATABASE_URL
  ? false
  : 'PostgreSQL only (DATABASE_URL is not set): PGlite uploads take a transaction each'

/** The user's change log: seq from 1 without gaps, and what each entry says. */
async function changeLog(app: Awaited<ReturnType<typeof buildTestApp>>, userId: string) {
  const rows = await queryRows<Record<string, unknown>>(
    app.db,
    sql`select seq::int, type, action, range_type, range_from::text, range_to::text, range_count
          from change_log where user_id = ${userId} order by seq`,
  )
  return rows
}

/**
 * The rollup recomputed by the database from the user's raw rows, in the columns and order of `quarters`: the
 * oracle for the rollup the upload statement wrote (computed in the server for new samples, repository.ts).
 */
const recomputed = (app: Awaited<ReturnType<typeof buildTestApp>>, userId: string) =>
  queryRows<Record<string, unknown>>(
    app.db,
    sql`select type, quarter::text, count(*)::int as count, sum(value) as sum, min(value) as min, max(value) as max,
               ${sql.raw(
                 [0, 1, 2]
                   .map(
                     (w) => `(count(*) filter (where mi / 5 = ${w}))::int as w${w}_count,
               coalesce(sum(value) filter (where mi / 5 = ${w}), 0) as w${w}_sum,
               min(value) filter (where mi / 5 = ${w}) as w${w}_min, max(value) filter (where mi / 5 = ${w}) as w${w}_max`,
                   )
                   .join(', '),
               )}, bit_or(1 << mi) as minute_mask
          from (select type, value, quarter, floor(extract(epoch from measured_at - quarter) / 60)::int as mi
                  from (select type, value, measured_at,
                               date_bin('15 minutes', measured_at, timestamptz '2000-01-01T00:00:00Z') as quarter
                          from measurements where user_id = ${userId}) s) q
         group by type, quarter order by type, quarter`,
  )

t.test('grouped uploads store and answer what each would alone', { skip }, async (t) => {
  const database = await freshDatabase()
  t.teardown(() => database.close())
  // The row path for every hour (these are past hours), so that every upload may be grouped.
  const env = { MEASUREMENT_INGEST_BLOCKS: 'false' }
  const grouped = await buildTestApp(t, { database, env: { ...env, MEASUREMENT_GROUP_COMMIT: '1' } })
  const alone = await buildTestApp(t, { database, env: { ...env, MEASUREMENT_GROUP_COMMIT: '0' } })
  const USERS = 8
  const a = await Promise.all(Array.from({ length: USERS }, () => userWithToken(grouped)))
  const b = await Promise.all(Array.from({ length: USERS }, () => userWithToken(alone)))
  const { hrA, hrB, temps, steps } = dataset(T0)
  // Each user's own uploads: live minutes of heart rate on two devices, temperatures, steps without a device.
  const uploadsOf = (u: number) => {
    const shift = (s: Sample[]) => s.map((x) => ({ ...x, value: x.value + u }))
    const out: Array<{ samples: Sample[]; device?: string }> = []
    const hr = shift(hrA.slice(0, 1200))
    for (let i = 0; i < hr.length; i += 60) out.push({ samples: hr.slice(i, i + 60), device: 'watch' })
    out.push({ samples: shift(hrB.slice(0, 300)), device: 'ring' })
    out.push({ samples: shift(temps.slice(0, 90)), device: 'watch' })
    out.push({ samples: shift(steps) })
    return out
  }
  const groupsBefore = (await grouped.metrics.uploadGroupSize.get()).values
  const answers = async (app: typeof grouped, users: typeof a) =>
    Promise.all(
      users.map(async (user, u) => {
        const mine = []
        for (const x of uploadsOf(u)) {
          const res = await upload(app, user.headers, x.samples, x.device)
          mine.push({ status: res.statusCode, body: res.json() })
        }
        return mine
      }),
    )
  const [ga, gb] = await Promise.all([answers(grouped, a), answers(alone, b)])
  t.same(ga, gb, 'every upload answers the same accepted and duplicates, grouped or alone')
  t.ok(
    ga.flat().every((r) => r.status === 200 && r.body.duplicates === 0),
    'all new',
  )

  const sizes = (await grouped.metrics.uploadGroupSize.get()).values
  const count = (vs: typeof sizes) => vs.find((v) => v.metricName === 'measurement_upload_group_size_count')?.value ?? 0
  const statements = count(sizes) - count(groupsBefore)
  const uploads = USERS * uploadsOf(0).length
  t.ok(statements < uploads, `fewer statements (${statements}) than uploads (${uploads}): uploads were grouped`)
  t.ok(
    sizes.some(
      (v) => v.metricName === 'measurement_upload_group_size_bucket' && v.labels.le === 1 && v.value < statements,
    ),
    'some statement held more than one upload',
  )

  t.test('each user holds exactly their samples, rollup and change log', async (t) => {
    for (let u = 0; u < USERS; u++) {
      t.same(await counts(grouped, a[u].user.id), await counts(alone, b[u].user.id))
      for (const type of ['heart_rate', 'skin_temperature', 'steps']) {
        t.same(await everySample(a[u], type, 5000), await everySample(b[u], type, 5000), `user ${u}: raw ${type}`)
      }
      const rollup = rounded(await quarters(grouped, a[u].user.id))
      t.same(rollup, rounded(await quarters(alone, b[u].user.id)))
      t.same(rollup, rounded(await recomputed(grouped, a[u].user.id)), `user ${u}: the rollup of the raw rows`)
      const log = await changeLog(grouped, a[u].user.id)
      t.same(log, await changeLog(alone, b[u].user.id), `user ${u}: the change log, entry for entry`)
      t.same(
        log.map((r) => r.seq),
        Array.from({ length: uploadsOf(u).length }, (_, i) => i + 1),
        'one entry per upload, seq without gaps',
      )
    }
    t.same(await snapshot(a[3], T0), await snapshot(b[3], T0), 'aggregates and statistics')
  })

  t.test('re-sends at once are duplicates, and record no change', async (t) => {
    const logged = (await changeLog(grouped, a[0].user.id)).length
    const again = await Promise.all(a.map((user, u) => upload(grouped, user.headers, uploadsOf(u)[0].samples, 'watch')))
    t.same(
      again.map((r) => r.json()),
      a.map(() => ({ accepted: 0, duplicates: 60 })),
    )
    t.equal((await changeLog(grouped, a[0].user.id)).length, logged)
  })

  t.test('one user uploading twice at once: each sample stored once', async (t) => {
    const more = series('heart_rate', T0 + 2 * HOUR, 120, (i) => 80 + (i % 5))
    const before = await counts(grouped, a[1].user.id)
    const res = await Promise.all([
      upload(grouped, a[1].headers, more, 'watch'),
      upload(grouped, a[1].headers, more, 'watch'),
      upload(grouped, a[1].headers, more.slice(30), 'ring'),
      upload(grouped, a[2].headers, more, 'watch'),
    ])
    const body = res.map((r) => r.json())
    t.same(
      [body[0].accepted + body[1].accepted, body[0].duplicates + body[1].duplicates],
      [120, 120],
      'the same batch twice at once: stored once',
    )
    t.same(body.slice(2), [
      { accepted: 90, duplicates: 0 },
      { accepted: 120, duplicates: 0 },
    ])
    t.equal((await counts(grouped, a[1].user.id)).rows, before.rows + 210)
    for (const u of [0, 1, 2]) {
      t.same(
        rounded(await quarters(grouped, a[u].user.id)),
        rounded(await recomputed(grouped, a[u].user.id)),
        `user ${u}: the rollup after re-sends and concurrent uploads`,
      )
    }
  })

  t.test('an upload meeting a compacted block, in a group with others', async (t) => {
    // Compact the first hour of every user: user 0 then re-sends some of it with a late sample of its own.
    await compactMeasurements(grouped.db, { before: T0 + HOUR, wait: true })
    const late = [...hrA.slice(100, 160).map((x) => ({ ...x, value: x.value })), ...hrA.slice(4100, 4101)]
    const others = series('heart_rate', T0 + 2.5 * HOUR, 60, (i) => 90 + (i % 4))
    const res = await Promise.all([
      upload(grouped, a[0].headers, late, 'watch'),
      ...a.slice(4).map((user) => upload(grouped, user.headers, others, 'watch')),
    ])
    t.same(res[0].json(), { accepted: 1, duplicates: 60 }, 'the compacted samples are duplicates, the late one new')
    t.same(
      res.slice(1).map((r) => r.json()),
      a.slice(4).map(() => ({ accepted: 60, duplicates: 0 })),
      'the others of the group stored',
    )
  })
})

t.test('a group that the database refuses: nothing of it stays, each upload again alone', { skip }, async (t) => {
  const app = await buildTestApp(t, { env: { MEASUREMENT_INGEST_BLOCKS: 'false' } })
  const repo = createMeasurementRepository(app.db)
  const pool = app.database.pool as pg.Pool
  const users = await Promise.all([userWithToken(app), userWithToken(app), userWithToken(app)])
  const runs: number[] = []
  const commit = groupCommit<GroupUpload, GroupStored>({
    inFlight: 1,
    maxWeight: 10_000,
    weight: (u) => u.samples.length,
    key: (u) => u.userId,
    run: (uploads) => {
      runs.push(uploads.length)
      return repo.storeGroup(pool, uploads)
    },
  })
  const samples = (v: number) =>
    Array.from({ length: 60 }, (_, i) => ({ type: 'heart_rate' as const, at: T0 + i * 1000, value: v }))
  await ensurePartitions(app.db, 'measurements', [T0])
  const of = (userId: string, v: number): GroupUpload => ({ userId, device: NO_DEVICE, samples: samples(v) })
  // The first runs alone; the next four wait and go as one group, which the foreign key refuses (no such user).
  // User 0's second upload repeats its first: duplicates.
  const first = commit.submit(of(users[0].user.id, 60))
  const group = [of(users[1].user.id, 61), of(randomUUID(), 62), of(users[2].user.id, 63), of(users[0].user.id, 64)]
  const results = group.map((u) =>
    commit.submit(u).then(
      (r) => r,
      (err: Error & { code?: string }) => err.code,
    ),
  )
  t.same(await first, { accepted: 60, blocked: false })
  const settled = await Promise.all(results)
  t.same(settled, [
    { accepted: 60, blocked: false },
    '23503',
    { accepted: 60, blocked: false },
    { accepted: 0, blocked: false },
  ])
  t.same(
    runs,
    [1, 4, 1, 1, 1, 1],
    'the group of 4 (user 0 again: its first upload has ended) is refused, then each alone',
  )
  const stored = await queryRows<{ user_id: string; n: number; value: number }>(
    app.db,
    sql`select user_id::text, count(*)::int as n, min(value) as value from measurements group by user_id order by 3`,
  )
  t.same(
    stored.map((r) => [r.user_id, r.n, r.value]),
    [
      [users[0].user.id, 60, 60],
      [users[1].user.id, 60, 61],
      [users[2].user.id, 60, 63],
    ],
    'each stored once, by its own statement; the refused one left nothing',
  )
})

t.test(
  'new samples go in by a plain insert; a re-send makes the group go again with ON CONFLICT',
  { skip },
  async (t) => {
    const app = await buildTestApp(t, { env: { MEASUREMENT_INGEST_BLOCKS: 'false' } })
    const repo = createMeasurementRepository(app.db)
    const real = app.database.pool as pg.Pool
    // The group statements storeGroup sends, as they reach the connection: does the row insert skip conflicts?
    const sent: string[] = []
    const pool = {
      connect: async () => {
        const client = await real.connect()
        return new Proxy(client, {
          get(target, key) {
            if (key !== 'query') return Reflect.get(target, key)
            return (q: { queries?: Array<{ sql: string }> }, ...rest: unknown[]) => {
              const last = q.queries?.at(-1)?.sql
              if (last)
                sent.push(/insert into measurements[\s\S]*?on conflict do nothing/.test(last) ? 'skip' : 'plain')
              return (target.query as (...a: unknown[]) => unknown)(q, ...rest)
            }
          },
        })
      },
    } as unknown as pg.Pool
    const [a, b, c] = await Promise.all([userWithToken(app), userWithToken(app), userWithToken(app)])
    await ensurePartitions(app.db, 'measurements', [T0])
    const samples = (from: number, n: number, v: number) =>
      Array.from({ length: n }, (_, i) => ({
        type: 'heart_rate' as const,
        at: T0 + (from + i) * 1000,
        value: v + (i % 7),
      }))
    const of = (userId: string, s: ReturnType<typeof samples>): GroupUpload => ({
      userId,
      device: NO_DEVICE,
      samples: s,
    })

    // A repeated timestamp inside one batch is the batch's own duplicate, never a conflict of the plain insert.
    const first = [...samples(0, 60, 60), ...samples(10, 5, 99)]
    t.same(await repo.storeGroup(pool, [of(a.user.id, first)]), [{ accepted: 60, blocked: false }])
    t.same(sent, ['plain'], 'new samples: one statement, a plain insert')

    sent.length = 0
    const group = [of(b.user.id, samples(0, 60, 70)), of(a.user.id, samples(30, 60, 80))]
    t.same(
      await repo.storeGroup(pool, group),
      [
        { accepted: 60, blocked: false },
        { accepted: 30, blocked: false },
      ],
      "a's first 30 were stored before: duplicates; b's all new, in the same group",
    )
    t.same(sent, ['plain', 'skip'], 'the plain insert was refused whole, then the group went again skipping conflicts')

    sent.length = 0
    t.same(await repo.storeGroup(pool, [of(c.user.id, samples(0, 60, 50)), of(a.user.id, samples(90, 60, 50))]), [
      { accepted: 60, blocked: false },
      { accepted: 60, blocked: false },
    ])
    t.same(sent, ['skip'], 'a re-sent a minute ago: its group skips conflicts at once, no statement refused first')

    const stored = await queryRows<{ user_id: string; n: number; first: number }>(
      app.db,
      sql`select user_id::text, count(*)::int as n, (array_agg(value order by measured_at))[11]::float8 as first
          from measurements group by user_id`,
    )
    const byUser = Object.fromEntries(stored.map((r) => [r.user_id, [r.n, r.first]]))
    t.same(
      byUser,
      { [a.user.id]: [150, 63], [b.user.id]: [60, 73], [c.user.id]: [60, 53] },
      'each sample stored once; of a timestamp repeated in a batch, the first one',
    )
    for (const u of [a, b, c]) {
      t.same(await quarters(app, u.user.id), await recomputed(app, u.user.id), 'the rollup is the raw rows')
    }
  },
)

t.test('the group statement is one text for any group: prepared once per connection', { skip }, async (t) => {
  const app = await buildTestApp(t, { env: { MEASUREMENT_INGEST_BLOCKS: 'false' } })
  const repo = createMeasurementRepository(app.db)
  const url = (app.database.pool as unknown as { options: { connectionString: string } }).options.connectionString
  const pool = new (await import('pg')).default.Pool({ connectionString: url, max: 1 })
  t.teardown(() => pool.end())
  const store = (uploads: GroupUpload[]) => repo.storeGroup(pool, uploads, { prepare: true })
  const users = await Promise.all([userWithToken(app), userWithToken(app), userWithToken(app)])
  await ensurePartitions(app.db, 'measurements', [T0])
  const samples = (from: number, n: number, types: Array<'heart_rate' | 'steps'> = ['heart_rate']) =>
    types.flatMap((type) =>
      Array.from({ length: n }, (_, i) => ({ type, at: T0 + (from + i) * 1000, value: 50 + (i % 9) })),
    )
  // With change log entries as the route writes them: one per type of the batch.
  const entries = (s: ReturnType<typeof samples>) =>
    [...new Set(s.map((x) => x.type))].map((type) => {
      const times = s.filter((x) => x.type === type).map((x) => x.at)
      return {
        type: 'measurements' as const,
        action: 'created' as const,
        range: { type, from: new Date(Math.min(...times)), to: new Date(Math.max(...times)), count: times.length },
      }
    })
  const of = (u: (typeof users)[number], s: ReturnType<typeof samples>, logged = true): GroupUpload => ({
    userId: u.user.id,
    device: NO_DEVICE,
    samples: s,
    changes: logged ? { entries: entries(s), recording: app.changes.recording } : undefined,
  })

  t.same(await store([of(users[0], samples(0, 60))]), [{ accepted: 60, blocked: false }])
  t.same(await store([of(users[1], samples(0, 5, ['heart_rate', 'steps'])), of(users[2], samples(0, 300))]), [
    { accepted: 10, blocked: false },
    { accepted: 300, blocked: false },
  ])
  t.same(await store([of(users[0], samples(60, 7), false)]), [{ accepted: 7, blocked: false }])
  const names = async () =>
    (
      await pool.query<{ n: number }>(
        `select count(*)::int as n from pg_prepared_statements where name like 'nowatch\\_%'`,
      )
    ).rows[0].n
  t.equal(await names(), 3, 'the lock, and the group statement with and without change log entries')

  // Every upload's change log entries, in order, as if each had gone alone.
  const log = await queryRows<{ user_id: string; seq: number; range_type: string; range_count: number }>(
    app.db,
    sql`select user_id::text, seq::int, range_type, range_count from change_log order by user_id, seq`,
  )
  t.same(
    log.filter((r) => r.user_id === users[1].user.id).map((r) => [r.seq, r.range_type, r.range_count]),
    [
      [1, 'heart_rate', 5],
      [2, 'steps', 5],
    ],
  )
  t.same(
    log.filter((r) => r.user_id === users[0].user.id).map((r) => [r.seq, r.range_count]),
    [[1, 60]],
    'the upload without entries recorded none',
  )

  // A re-send: the plain insert is refused, the group goes again skipping conflicts (a fourth text).
  t.same(await store([of(users[2], samples(250, 100))]), [{ accepted: 50, blocked: false }])
  t.equal(await names(), 4)
  t.same(
    (
      await queryRows<{ n: number }>(
        app.db,
        sql`select count(*)::int as n from change_log where user_id = ${users[2].user.id}`,
      )
    )[0].n,
    2,
    'the re-send logged once, by the statement that stored it',
  )
})

t.test('DATABASE_PREPARED_STATEMENTS: the upload route prepares its group statement, or not', { skip }, async (t) => {
  for (const [setting, expected] of [
    [undefined, 2],
    ['false', 0],
  ] as const) {
    // One connection: the pool's statements are the session's that the query below looks at.
    const env: Record<string, string> = { PG_POOL_MAX: '1', MEASUREMENT_INGEST_BLOCKS: 'false' }
    if (setting) env.DATABASE_PREPARED_STATEMENTS = setting
    const app = await buildTestApp(t, { env })
    const pool = app.database.pool as pg.Pool
    await pool.query('deallocate all')
    const user = await userWithToken(app)
    for (const from of [0, 60]) {
      const res = await upload(
        app,
        user.headers,
        series('heart_rate', T0 + from * 1000, 60, (i) => 60 + (i % 5)),
      )
      t.same(res.json(), { accepted: 60, duplicates: 0 })
    }
    const { rows } = await pool.query<{ n: number }>(
      `select count(*)::int as n from pg_prepared_statements where name like 'nowatch\\_%'`,
    )
    t.equal(rows[0].n, expected, `${setting ?? 'default'}: the lock and the group statement, prepared or not`)
  }
})
