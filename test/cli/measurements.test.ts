import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import t from 'tap'
import { openDatabase, queryRows } from '../../db/client.ts'
import { ensurePartitions } from '../../routes/measurement/partitions.ts'
import { createMeasurementRepository } from '../../routes/measurement/repository.ts'
import { createUserRepository } from '../../routes/user/repository.ts'
import { runCli } from '../helpers/cli.ts'

// `npm run cli -- measurements compact` on an embedded database of its own: closed hours move into blocks at
// once, and the samples read the same.
t.setTimeout(600_000)

t.test('npm run cli -- measurements compact / retention', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-measurements-'))
  const env = { DATA_DIR: dir, DATABASE_URL: '', LOG_LEVEL: 'silent', NODE_ENV: 'development' }
  const start = Date.parse('2024-05-10T10:00:00Z')
  const samples = Array.from({ length: 7200 }, (_, i) => ({
    type: 'heart_rate' as const,
    at: start + i * 1000,
    value: 60 + (i % 9),
  }))
  let userId = ''
  let database = await openDatabase({ dataDir: dir })
  try {
    await database.migrate()
    const user = await createUserRepository(database.db).create({
      email: 'cli-measurements@example.com',
      passwordHash: 'x',
      firstName: 'C',
      lastName: 'L',
      tocAcceptedAt: new Date(),
      privacyPolicyAcceptedAt: new Date(),
    })
    userId = user?.id as string
    await ensurePartitions(
      database.db,
      'measurements',
      samples.map((s) => s.at),
    )
    const repo = createMeasurementRepository(database.db)
    await database.db.transaction((tx) => repo.ingest(userId, 'watch', samples, tx))
  } finally {
    await database.close()
  }

  const compact = await runCli(['measurements', 'compact'], env)
  t.equal(compact.code, 0, compact.stderr)
  t.same(JSON.parse(compact.stdout), { users: 1, blocks: 2, samples: 7200, skipped: 0 })
  const retention = await runCli(['measurements', 'retention'], env)
  t.same(JSON.parse(retention.stdout), { samples: 0, droppedPartitions: 0 }, 'off by default')

  database = await openDatabase({ dataDir: dir })
  try {
    const [c] = await queryRows<{ rows: number; blocks: number }>(
      database.db,
      sql`select (select count(*)::int from measurements) as rows, (select count(*)::int from measurement_blocks) as blocks`,
    )
    t.same(c, { rows: 0, blocks: 2 })
    const page = await createMeasurementRepository(database.db).list(userId, { type: 'heart_rate', limit: 10_000 })
    t.same(
      page.map((s) => [Date.parse(s.timestamp), s.value, s.device_id]),
      samples.map((s) => [s.at, s.value, 'watch']),
    )
  } finally {
    await database.close()
  }
})
