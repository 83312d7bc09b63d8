import { randomBytes } from 'node:crypto'
import pg from 'pg'
import t from 'tap'
import { openDatabase } from '../../db/client.ts'
import { checkins } from '../../db/schema/index.ts'
import { buildTestApp } from '../helpers/app.ts'
import { freshDatabase } from '../helpers/database.ts'
import { userWithToken } from '../helpers/fixtures.ts'

// Read replicas (issue 21) against a real streaming replica of DATABASE_URL's cluster: CI's (.ci/run starts
// one with pg_basebackup -R and sets TEST_REPLICA_URL). This file pauses the replica's WAL replay to make it
// stale on purpose, so it is the only test file that uses TEST_REPLICA_URL.
const skip = !process.env.DATABASE_URL
  ? 'runs in the PostgreSQL suite (DATABASE_URL set)'
  : !process.env.TEST_REPLICA_URL
    ? 'TEST_REPLICA_URL is not set (a streaming replica of DATABASE_URL; .ci/run starts one)'
    : false

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const onDatabase = (url: string, name: string) => {
  const u = new URL(url)
  u.pathname = `/${name}`
  return u.toString()
}

async function one<T>(client: pg.Client, text: string, values: unknown[] = []): Promise<T> {
  return (await client.query(text, values)).rows[0] as T
}

t.test('read replicas', { skip }, async (t) => {
  const primaryDb = await freshDatabase()
  t.teardown(() => primaryDb.close())
  const url = primaryDb.url as string
  const name = new URL(url).pathname.slice(1)
  const replicaUrl = onDatabase(process.env.TEST_REPLICA_URL as string, name)

  const primary = new pg.Client({ connectionString: url })
  await primary.connect()
  t.teardown(() => primary.end())
  // The new database reaches the replica by WAL replay: wait for it, migrated.
  const replica = new pg.Client({ connectionString: replicaUrl })
  for (let i = 0; ; i++) {
    try {
      await replica.connect()
      break
    } catch (err) {
      if (i > 100) throw err
      await sleep(200)
    }
  }
  t.teardown(() => replica.end())
  const caughtUp = async () => {
    const { lsn } = await one<{ lsn: string }>(primary, 'select pg_current_wal_lsn()::text as lsn')
    for (let i = 0; i < 200; i++) {
      const { ok } = await one<{ ok: boolean }>(replica, 'select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [lsn])
      if (ok) return
      await sleep(50)
    }
    throw new Error('the replica did not catch up')
  }
  await caughtUp()

  const routed = await openDatabase({
    databaseUrl: url,
    replicaUrls: [replicaUrl],
    poolMax: 5,
    // Generous: this file pauses replay on purpose and must keep the replica in rotation meanwhile.
    replica: { maxLagS: 3600, checkIntervalMs: 200 },
  })
  t.teardown(() => routed.close())
  const app = await buildTestApp(t, { database: routed })
  const alice = await userWithToken(app)
  const bob = await userWithToken(app)
  await caughtUp()
  await routed.replicas?.check()
  t.match(routed.replicas?.status(), [{ replica: 1, state: 'up', lag_seconds: 0 }], 'the replica is in rotation')

  t.test('/readyz reports the replica', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/readyz' })
    t.equal(res.statusCode, 200)
    t.match(res.json(), { status: 'ready', database: 'postgres', replicas: [{ replica: 1, state: 'up' }] })
    t.notMatch(res.body, /127\.0\.0\.1|postgres:\/\//, 'no address of a replica')
  })

  t.test('reads of replica routes are served by the replica, not the primary', async (t) => {
    await bob.call('POST', '/v1/checkins', { mood: 3, timestamp: '2026-11-20T08:00:00Z' })
    await caughtUp()
    // Bob's fence (his write) is passed now: his reads may use the replica.
    await routed.replicas?.check()
    const tableReads = async (client: pg.Client) => {
      await client.query('select pg_stat_clear_snapshot()')
      return Number(
        (
          await one<{ n: string }>(
            client,
            `select coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0) as n from pg_stat_user_tables
              where relname = 'checkins' or relname like 'measurement%'`,
          )
        ).n,
      )
    }
    const commits = async (client: pg.Client) => {
      await client.query('select pg_stat_clear_snapshot()')
      const { n } = await one<{ n: string }>(
        client,
        'select xact_commit as n from pg_stat_database where datname = current_database()',
      )
      return Number(n)
    }
    // A backend's statistics reach the shared views when it goes idle, at most PGSTAT_IDLE_INTERVAL (10 s) later
    // (PostgreSQL 15, pgstat.c): wait that out before the baseline and before the primary's final count.
    const settle = () => sleep(11_000)
    await settle()
    const before = { primary: await tableReads(primary), replicaReads: await tableReads(replica) }
    const replicaCommits = await commits(replica)
    const N = 20
    for (let i = 0; i < N; i++) {
      const list = await bob.call('GET', '/v1/checkins')
      t.equal(list.status, 200)
      const agg = await bob.call(
        'GET',
        '/v1/measurements/aggregate?type=heart_rate&bucket=1h&from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z',
      )
      t.equal(agg.status, 200)
    }
    await settle()
    const after = { primary: await tableReads(primary), replicaReads: await tableReads(replica) }
    t.ok(
      after.replicaReads - before.replicaReads >= 2 * N,
      `the replica scanned the tables ${after.replicaReads - before.replicaReads} times`,
    )
    t.ok((await commits(replica)) - replicaCommits >= 2 * N, "the replica's transaction count grew")
    t.equal(after.primary - before.primary, 0, 'the primary did not read those tables at all')
    t.ok((routed.replicas?.replicas[0]?.reads ?? 0) >= 2 * N)
  })

  t.test('read-your-writes on every write-then-read route, with the replica stale on purpose', async (t) => {
    await caughtUp()
    await replica.query('select pg_wal_replay_pause()')
    t.teardown(() => replica.query('select pg_wal_replay_resume()'))
    for (let i = 0; ; i++) {
      const { state } = await one<{ state: string }>(replica, 'select pg_get_wal_replay_pause_state() as state')
      if (state === 'paused') break
      if (i > 100) throw new Error('replay did not pause')
      await sleep(50)
    }

    // Control: a row written behind the API's back (no fence for Bob) is not seen: reads really are stale.
    const marker = `stale-${randomBytes(4).toString('hex')}`
    const [bobUser] = [bob.user as { id: string }]
    await routed.db.insert(checkins).values({ userId: bobUser.id, at: new Date(), mood: 2, note: marker })
    const stale = await bob.call('GET', '/v1/checkins')
    t.equal(stale.status, 200)
    t.notMatch(JSON.stringify(stale.body), marker, 'a user without a recent write reads the (stale) replica')
    t.match(routed.replicas?.status(), [{ state: 'up' }], 'the paused replica stays in rotation (lag within the limit)')

    // Every replica-routed route of one's own data, read right after a write that changes its answer.
    const covered = new Set<string>()
    const read = async (path: string, route: string) => {
      covered.add(`GET ${route}`)
      const res = await alice.call('GET', path)
      return { status: res.status, text: JSON.stringify(res.body ?? '') }
    }
    const exportText = async () => {
      covered.add('GET /v1/users/me/export')
      const res = await app.inject({ method: 'GET', url: '/v1/users/me/export', headers: alice.headers })
      t.equal(res.statusCode, 200)
      return res.body
    }
    const tag = () => `ryw-${randomBytes(4).toString('hex')}`

    t.test('check-ins', async (t) => {
      const note = tag()
      const created = await alice.call('POST', '/v1/checkins', { mood: 4, note, timestamp: '2026-11-20T09:00:00Z' })
      t.equal(created.status, 201)
      const id = created.body.id
      t.match((await read('/v1/checkins', '/v1/checkins')).text, note)
      t.match((await read(`/v1/checkins/${id}`, '/v1/checkins/:id')).text, note)
      t.match(await exportText(), note, 'the account export')
      const edited = tag()
      t.equal((await alice.call('PATCH', `/v1/checkins/${id}`, { note: edited })).status, 200)
      t.match((await read(`/v1/checkins/${id}`, '/v1/checkins/:id')).text, edited)
      t.equal((await alice.call('DELETE', `/v1/checkins/${id}`)).status, 200)
      t.equal((await read(`/v1/checkins/${id}`, '/v1/checkins/:id')).status, 404)
    })

    t.test('day feedback', async (t) => {
      const note = tag()
      t.equal((await alice.call('PUT', '/v1/day-feedback/2026-11-20', { mood: 4, note })).status, 201)
      t.match((await read('/v1/day-feedback?from=2026-11-19&to=2026-11-21', '/v1/day-feedback')).text, note)
      t.match((await read('/v1/day-feedback/2026-11-20', '/v1/day-feedback/:date')).text, note)
      t.equal((await alice.call('DELETE', '/v1/day-feedback/2026-11-20')).status, 200)
      t.equal((await read('/v1/day-feedback/2026-11-20', '/v1/day-feedback/:date')).status, 404)
    })

    for (const [path, kind] of [
      ['/v1/activities', 'walk'],
      ['/v1/intentions', 'focus'],
    ] as const) {
      t.test(path, async (t) => {
        const started = await alice.call('POST', path, {
          kind,
          started_at: '2026-11-20T10:00:00Z',
          ended_at: '2026-11-20T10:30:00Z',
        })
        t.equal(started.status, 201)
        const id = started.body.id as string
        t.match((await read(path, path)).text, id)
        t.match((await read(`${path}/${id}`, `${path}/:id`)).text, '"duration_s":1800')
        t.equal((await alice.call('PATCH', `${path}/${id}`, { ended_at: '2026-11-20T10:40:00Z' })).status, 200)
        t.match((await read(`${path}/${id}`, `${path}/:id`)).text, '"duration_s":2400')
      })
    }

    t.test('measurements, statistics and sleep', async (t) => {
      const day = '2026-11-21'
      const samples = [
        ...Array.from({ length: 30 }, (_, i) => ({
          type: 'heart_rate',
          timestamp: new Date(Date.parse(`${day}T08:00:00Z`) + i * 1000).toISOString(),
          value: 70,
        })),
        { type: 'steps', timestamp: `${day}T08:00:00Z`, value: 4321 },
      ]
      const range = `from=${day}T00:00:00Z&to=${day}T23:59:59Z`
      const beforeDaily = (await read(`/v1/statistics/daily?from=${day}&to=${day}`, '/v1/statistics/daily')).text
      const beforeSummary = (await read(`/v1/statistics/summary?period=week&date=${day}`, '/v1/statistics/summary'))
        .text
      t.same((await alice.call('POST', '/v1/measurements', { device_id: 'w', samples })).body, {
        accepted: 31,
        duplicates: 0,
      })
      t.match((await read(`/v1/measurements?type=heart_rate&${range}`, '/v1/measurements')).text, `${day}T08:00:29`)
      t.match(
        (await read(`/v1/measurements/aggregate?type=heart_rate&bucket=1h&${range}`, '/v1/measurements/aggregate'))
          .text,
        '"count":30',
      )
      const daily = (await read(`/v1/statistics/daily?from=${day}&to=${day}`, '/v1/statistics/daily')).text
      t.not(daily, beforeDaily)
      t.match(daily, '4321')
      t.not(
        (await read(`/v1/statistics/summary?period=week&date=${day}`, '/v1/statistics/summary')).text,
        beforeSummary,
      )
      t.equal((await alice.call('DELETE', `/v1/measurements?type=heart_rate&${range}`)).status, 200)
      t.notMatch((await read(`/v1/measurements?type=heart_rate&${range}`, '/v1/measurements')).text, `${day}T08:00`)

      // A night of sleep stages: light sleep 02:00-06:00Z, then awake.
      const night = Array.from({ length: 49 }, (_, i) => ({
        type: 'sleep_stage',
        timestamp: new Date(Date.parse('2026-11-22T02:00:00Z') + i * 300_000).toISOString(),
        value: i === 48 ? 0 : 1,
      }))
      const beforeNights = (await read('/v1/sleep/daily?from=2026-11-21&to=2026-11-22', '/v1/sleep/daily')).text
      t.equal((await alice.call('POST', '/v1/measurements', { device_id: 'w', samples: night })).status, 200)
      t.match((await read('/v1/sleep?from=2026-11-21&to=2026-11-22', '/v1/sleep')).text, '2026-11-22T02:00')
      t.not((await read('/v1/sleep/daily?from=2026-11-21&to=2026-11-22', '/v1/sleep/daily')).text, beforeNights)
    })

    t.test('every replica route of own data is covered above', async (t) => {
      // Not promised read-your-writes, by design: a viewer's read of shared data (the owner wrote it, not the
      // viewer), and the admin telemetry queries (the apps wrote it, not the admin). Both may trail the primary by
      // at most REPLICA_MAX_LAG_S.
      const own = app.replicaRoutes.filter((r) => !r.includes('/shared/') && !r.includes('/admin/'))
      t.ok(own.length >= 14, `${own.length} routes`)
      t.same(
        own.filter((r) => !covered.has(r)),
        [],
        'no replica-routed route is missing a write-then-read check',
      )
    })

    t.test('after replay resumes, the fence is passed and reads go back to the replica', async (t) => {
      await replica.query('select pg_wal_replay_resume()')
      await caughtUp()
      await routed.replicas?.check()
      const served = routed.replicas?.replicas[0]?.reads ?? 0
      const res = await alice.call('GET', '/v1/checkins')
      t.equal(res.status, 200)
      t.ok((routed.replicas?.replicas[0]?.reads ?? 0) > served, 'served by the replica again')
      const fresh = await bob.call('GET', '/v1/checkins')
      t.match(JSON.stringify(fresh.body), marker, 'and the replica now has what was written behind its back')
    })
  })

  t.test('a lagging replica leaves rotation and its reads go to the primary; it rejoins', async (t) => {
    const strict = await openDatabase({
      databaseUrl: url,
      replicaUrls: [replicaUrl],
      poolMax: 2,
      replica: { maxLagS: 1, checkIntervalMs: 200 },
    })
    t.teardown(() => strict.close())
    const app2 = await buildTestApp(t, { database: strict })
    const carol = await userWithToken(app2)
    await caughtUp()
    await replica.query('select pg_wal_replay_pause()')
    t.teardown(() => replica.query('select pg_wal_replay_resume()'))
    // The primary moves on (a write of someone else, behind the API), the paused replica does not.
    await strict.db.insert(checkins).values({ userId: (alice.user as { id: string }).id, at: new Date(), mood: 1 })
    let state = ''
    for (let i = 0; i < 100 && state !== 'lagging'; i++) {
      await sleep(100)
      state = (await app2.inject({ method: 'GET', url: '/readyz' })).json().replicas[0].state
    }
    t.equal(state, 'lagging', 'out of rotation within seconds')
    const ready = (await app2.inject({ method: 'GET', url: '/readyz' })).json()
    t.equal(ready.status, 'ready', 'the server stays ready on its primary')
    t.ok(ready.replicas[0].lag_seconds >= 1, `lag ${ready.replicas[0].lag_seconds} s reported`)
    const served = strict.replicas?.replicas[0]?.reads ?? 0
    t.equal((await carol.call('GET', '/v1/checkins')).status, 200)
    t.equal(strict.replicas?.replicas[0]?.reads, served, 'read on the primary')
    await replica.query('select pg_wal_replay_resume()')
    for (let i = 0; i < 100 && state !== 'up'; i++) {
      await sleep(100)
      state = (await app2.inject({ method: 'GET', url: '/readyz' })).json().replicas[0].state
    }
    t.equal(state, 'up', 'back in rotation once caught up')
  })
})
