import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { openDatabase, queryRows } from '../../db/client.ts'
import { runCli } from '../helpers/cli.ts'
import { startServer } from '../helpers/processes.ts'
import { loginOver, seededDatabase } from '../helpers/seed.ts'

// Backup of the embedded database while the real server runs (through its socket), restored by the
// real CLI into a fresh folder: every row of every table is there.
const skip = process.env.DATABASE_URL ? 'the embedded database only (DATABASE_URL is set)' : false

async function everyRow(dataDir: string) {
  const database = await openDatabase({ dataDir })
  try {
    const tables = await queryRows<{ name: string }>(
      database.db,
      sql`select table_name as name from information_schema.tables
           where table_schema = 'public' and table_type = 'BASE TABLE' order by 1`,
    )
    const all: Record<string, string[]> = {}
    for (const { name } of tables) {
      const rows = await queryRows<{ r: string }>(
        database.db,
        sql`select to_jsonb(t)::text as r from ${sql.identifier(name)} t order by 1`,
      )
      all[name] = rows.map((r) => r.r)
    }
    return all
  } finally {
    await database.close()
  }
}

t.test('backup while serving, restore into a fresh folder, every row there', { skip }, async (t) => {
  const seeded = await seededDatabase(['backup-a@example.com', 'backup-b@example.com'])
  const env: Record<string, string> = { ...seeded.env, JOBS_ENABLED: 'false', RATE_LIMIT_ENABLED: 'false' }
  const server = await startServer(env)
  t.teardown(() => server.stop())

  // Data of several kinds: sessions, samples with their rollups, a check-in, a setting, audit-free rows. A's samples
  // are of closed hours (they go straight into blocks), B's of the last minutes (rows).
  const recent = Date.now() - 600_000
  for (const email of ['backup-a@example.com', 'backup-b@example.com']) {
    const { access } = await loginOver(server.url, seeded.clientToken, email)
    const auth = { authorization: `Bearer ${access}`, 'content-type': 'application/json' }
    const samples = Array.from({ length: 500 }, (_, i) => ({
      type: 'heart_rate',
      timestamp: new Date((email.startsWith('backup-a') ? Date.UTC(2026, 10, 20, 8) : recent) + i * 1000).toISOString(),
      value: 60 + (i % 30),
    }))
    const up = await fetch(`${server.url}/v1/measurements`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ device_id: 'watch-1', samples }),
    })
    t.equal(up.status, 200)
    const checkin = await fetch(`${server.url}/v1/checkins`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({
        timestamp: '2026-11-20T09:00:00Z',
        mood: 4,
        energy: 3,
        stress: 2,
        tags: ['ok'],
        note: 'n',
      }),
    })
    t.equal(checkin.status, 201, await checkin.text())
  }

  const file = join(mkdtempSync(join(tmpdir(), 'nowatch-backup-')), 'nowatch.backup.gz')
  const backup = await runCli(['backup', '--out', file], env)
  t.equal(backup.code, 0, backup.stderr)
  const summary = JSON.parse(backup.stdout) as { status: string; rows: number; tables: Record<string, number> }
  t.equal(summary.status, 'success')
  t.equal(summary.tables.measurements, 500, "B's samples as rows")
  t.equal(summary.tables.measurement_blocks, 1, "A's hour as one block")
  t.equal(summary.tables.users, 2)
  t.equal((await fetch(`${server.url}/readyz`)).status, 200, 'the server served on through the backup')

  const fresh = mkdtempSync(join(tmpdir(), 'nowatch-restored-'))
  const restore = await runCli(['restore', '--in', file], { DATA_DIR: fresh })
  t.equal(restore.code, 0, restore.stderr)
  t.equal((JSON.parse(restore.stdout) as { rows: number }).rows, summary.rows)

  const again = await runCli(['restore', '--in', file], { DATA_DIR: fresh })
  t.equal(again.code, 1)
  t.match(again.stderr, /^restore: the target database is not empty/, 'never over existing data')
  const busy = await runCli(['restore', '--in', file], env)
  t.equal(busy.code, 1)
  t.match(busy.stderr, /in use by the running server: stop it/, 'never under a running server')

  t.equal(await server.stop(), 0)
  const source = await everyRow(env.DATA_DIR)
  const restored = await everyRow(fresh)
  t.same(Object.keys(restored), Object.keys(source), 'every table')
  for (const table of Object.keys(source)) t.same(restored[table], source[table], `${table}: every row, every column`)
  t.ok(
    source.measurements.length === 500 && source.measurement_blocks.length === 1 && source.sessions.length >= 2,
    'and there was data to compare',
  )
})
