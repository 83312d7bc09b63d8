import t from 'tap'
import { isReadOnly, lsn } from '../../db/replicas.ts'
import { loadConfig } from '../../plugins/config.ts'
import { buildTestApp } from '../helpers/app.ts'

// The pieces of replica routing that need no replica (the rest: test/operations/replicas.test.ts).
t.test('only plain reads are replica-safe', async (t) => {
  for (const q of [
    'select * from checkins where user_id = $1',
    '  SELECT 1',
    '(select 1) union (select 2)',
    'with w as (select 1) select * from w',
    'values (1)',
  ]) {
    t.ok(isReadOnly(q), q)
  }
  for (const q of [
    'insert into checkins values ($1)',
    'update sessions set last_used_at = now()',
    'delete from read_fences',
    'with d as (delete from x returning *) select * from d',
    'select * from sessions where id = $1 for update',
    'select * from jobs for no key update skip locked',
    'begin',
    'commit',
    'select pg_advisory_xact_lock(1) for share',
    undefined,
    '',
  ]) {
    t.notOk(isReadOnly(q), String(q))
  }
})

t.test('WAL positions compare as numbers', async (t) => {
  t.ok(lsn('0/3000060') > lsn('0/3000000'))
  t.ok(lsn('1/0') > lsn('0/FFFFFFFF'))
  t.equal(lsn('16/B374D848'), (0x16n << 32n) + 0xb374d848n)
})

t.test('DATABASE_REPLICA_URLS needs the primary, and is a list of postgres URLs', async (t) => {
  t.throws(
    () => loadConfig({ NODE_ENV: 'test', DATABASE_REPLICA_URLS: 'postgres://r1/db' }),
    /DATABASE_REPLICA_URLS needs DATABASE_URL/,
  )
  t.throws(
    () => loadConfig({ NODE_ENV: 'test', DATABASE_URL: 'postgres://p/db', DATABASE_REPLICA_URLS: 'mysql://r1/db' }),
    /DATABASE_REPLICA_URLS/,
  )
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: 'postgres://p/db',
    DATABASE_REPLICA_URLS: 'postgres://r1/db, postgres://r2/db',
  })
  t.equal(config.REPLICA_MAX_LAG_S, 10)
  t.equal(config.REPLICA_CHECK_INTERVAL_MS, 1000)
})

t.test('without replicas /readyz has no replica list, and the read routes are declared', async (t) => {
  const app = await buildTestApp(t)
  t.equal(app.database.replicas, undefined)
  const res = await app.inject({ method: 'GET', url: '/readyz' })
  t.same(Object.keys(res.json()).sort(), ['database', 'status'])
  for (const route of [
    'GET /v1/measurements/aggregate',
    'GET /v1/statistics/daily',
    'GET /v1/checkins',
    'GET /v1/shared/:owner_id/checkins',
    'GET /v1/users/me/export',
    'GET /v1/admin/telemetry/spans',
  ]) {
    t.ok(app.replicaRoutes.includes(route), route)
  }
  t.notOk(app.replicaRoutes.includes('GET /v1/insights'), 'insights write on read: primary')
})
