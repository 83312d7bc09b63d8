import type { SQL } from 'drizzle-orm'
import { PgDialect } from 'drizzle-orm/pg-core'
import t from 'tap'
import type { Db, DbOrTx } from '../../db/client.ts'
import { compactMeasurements } from '../../routes/measurement/compaction.ts'
import { type Bucket, createMeasurementRepository } from '../../routes/measurement/repository.ts'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { ingest, series } from '../helpers/measurement.ts'

// Reads that decode blocks in one statement and read the row table in another see one snapshot: a compaction
// that commits between the two (moving the hour's rows into a block) neither drops those samples nor counts
// them twice. The compaction is put between the statements deterministically: the repository gets a handle
// whose first read of measurement_blocks runs a whole compaction before it answers.

const HOUR = 3600_000
const T0 = Date.parse('2024-05-10T10:00:00Z')
const dialect = new PgDialect()

/**
 * `db` for a repository, with `compact` run once right after its first statement that reads measurement_blocks.
 * Inside a transaction on PGlite the compaction cannot run before the transaction ends (one connection), so it
 * is started there and awaited by the caller (`done`); everywhere else it commits before the read goes on.
 */
function compactingAfterBlockRead(db: Db, compact: () => Promise<unknown>, pglite: boolean) {
  let started: Promise<unknown> | undefined
  const wrap = <D extends DbOrTx>(target: D, inTx: boolean): D =>
    new Proxy(target, {
      get(obj, prop) {
        if (prop === 'execute') {
          return async (query: SQL) => {
            const res = await obj.execute(query)
            if (!started && /\bfrom measurement_blocks\b/.test(dialect.sqlToQuery(query).sql)) {
              started = compact()
              if (!(inTx && pglite)) await started
            }
            return res
          }
        }
        if (prop === 'transaction') {
          return (work: (tx: DbOrTx) => Promise<unknown>, config?: unknown) =>
            (obj as Db).transaction((tx) => work(wrap(tx, true)), config as never)
        }
        const value = Reflect.get(obj, prop, obj)
        return typeof value === 'function' ? value.bind(obj) : value
      },
    })
  return { db: wrap(db, false), done: () => started, fired: () => started !== undefined }
}

t.test('aggregates with raw edges read the blocks and the rows in one snapshot', async (t) => {
  // Rows and blocks side by side: uploads go through the row table, the test compacts.
  const app = await buildTestApp(t, { env: { MEASUREMENT_INGEST_BLOCKS: 'false' } })
  const pglite = app.database.kind === 'pglite'
  const user = await userWithToken(app)
  // One hour of heart rate every 5 s per bucket size below (and one before), values varying within every minute.
  const buckets: Bucket[] = ['15m', '5m', '1h', '1d', '1m']
  const samples = series('heart_rate', T0 - HOUR, (buckets.length + 1) * 720, (i) => 50 + ((i * 7919) % 97), 5000)
  await ingest(app, user.headers, samples, 'w')
  // The hour before: compacted first, so the blocks' partition of the month exists before the reads begin.
  await compactMeasurements(app.db, { before: T0, wait: true })

  for (const [k, bucket] of buckets.entries()) {
    await t.test(`bucket ${bucket}`, async (t) => {
      const hour = T0 + k * HOUR
      // Partial quarter-hours at both ends: those samples come from the blocks and the row table.
      const from = hour + 7 * 60_000 + 30_000
      const to = hour + 52 * 60_000 + 30_000
      const expected = samples.filter((s) => Date.parse(s.timestamp) >= from && Date.parse(s.timestamp) < to)
      const hooked = compactingAfterBlockRead(
        app.db,
        () => compactMeasurements(app.db, { before: hour + HOUR, wait: true }),
        pglite,
      )
      const rows = await createMeasurementRepository(hooked.db).aggregate(user.user.id, {
        type: 'heart_rate',
        from: new Date(from),
        to: new Date(to),
        bucket,
        timeZone: 'Asia/Kathmandu',
      })
      t.ok(hooked.fired(), 'the compaction ran between the statements')
      const compacted = (await hooked.done()) as { samples: number }
      t.equal(compacted.samples, 720, "the compaction moved the hour's rows into blocks")
      t.equal(
        rows.reduce((n, r) => n + r.count, 0),
        expected.length,
        'every sample of the range counted once',
      )
      t.equal(
        rows.reduce((n, r) => n + r.sum, 0),
        expected.reduce((n, s) => n + s.value, 0),
      )
      t.equal(Math.min(...rows.map((r) => r.min)), Math.min(...expected.map((s) => s.value)))
    })
  }
})
