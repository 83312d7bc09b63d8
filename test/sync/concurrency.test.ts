import fc from 'fast-check'
import t from 'tap'
import type { ChangeEntry } from '../../plugins/changes.ts'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'

class Rollback extends Error {}
const ticks = (n: number) => new Promise<void>((resolve) => setTimeout(resolve, n))

/**
 * The feed under concurrent writers (several transactions of the same users on several connections, some
 * rolled back, each pausing between its statements) and a reader polling meanwhile: whatever the
 * interleaving, the reader sees every committed change exactly once, in seq order without gaps, and
 * nothing of a rolled-back transaction. On PostgreSQL the transactions really overlap (a pool of
 * connections); on PGlite they queue, which the property must survive too.
 */
t.test('the feed never skips or repeats a change, whatever the interleaving', async (t) => {
  const app = await buildTestApp(t)
  let run = 0

  const TxArb = fc.record({
    user: fc.integer({ min: 0, max: 1 }),
    entries: fc.integer({ min: 1, max: 3 }),
    before: fc.integer({ min: 0, max: 3 }),
    between: fc.integer({ min: 0, max: 3 }),
    commit: fc.boolean(),
  })
  const ScenarioArb = fc.record({
    writers: fc.array(fc.array(TxArb, { minLength: 1, maxLength: 4 }), { minLength: 2, maxLength: 5 }),
    limits: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 5 }),
  })

  await fc.assert(
    fc.asyncProperty(ScenarioArb, async ({ writers, limits }) => {
      run++
      const users = [await userWithToken(app), await userWithToken(app)]
      const committed: Array<Set<string>> = [new Set(), new Set()]
      let n = 0
      const writing = writers.map(async (txs, w) => {
        for (const [k, spec] of txs.entries()) {
          const entries: ChangeEntry[] = Array.from({ length: spec.entries }, () => ({
            type: 'checkin',
            action: 'created',
            id: `r${run}-w${w}-t${k}-${n++}`,
          }))
          try {
            await app.db.transaction(async (tx) => {
              await ticks(spec.before)
              await app.changes.record(tx, users[spec.user].user.id, entries)
              await ticks(spec.between)
              if (!spec.commit) throw new Rollback()
            })
            for (const e of entries) committed[spec.user].add(e.id as string)
          } catch (err) {
            if (!(err instanceof Rollback)) throw err
          }
        }
      })

      const seen: Array<Array<{ seq: number; id: string }>> = [[], []]
      const cursors: Array<string | undefined> = [undefined, undefined]
      let done = false
      let reads = 0
      const readOnce = async (u: number) => {
        const limit = limits[reads++ % limits.length]
        const q = cursors[u] ? `&cursor=${cursors[u]}` : ''
        const res = await users[u].call('GET', `/v1/sync?limit=${limit}${q}`)
        if (res.status !== 200) throw new Error(`sync answered ${res.status}`)
        seen[u].push(...res.body.changes.map((c: { seq: number; id: string }) => ({ seq: c.seq, id: c.id })))
        cursors[u] = res.body.next_cursor
        return res.body.has_more as boolean
      }
      const reading = (async () => {
        while (!done) {
          await readOnce(reads % 2)
          await ticks(0)
        }
      })()
      await Promise.all(writing)
      done = true
      await reading
      for (const u of [0, 1]) while (await readOnce(u)) {}

      for (const u of [0, 1]) {
        const seqs = seen[u].map((c) => c.seq)
        if (!seqs.every((s, i) => s === i + 1)) throw new Error(`user ${u}: seqs ${seqs.join(',')}`)
        const ids = seen[u].map((c) => c.id)
        if (new Set(ids).size !== ids.length) throw new Error(`user ${u}: a change came twice`)
        const expected = [...committed[u]].sort()
        if (JSON.stringify([...ids].sort()) !== JSON.stringify(expected)) {
          throw new Error(`user ${u}: saw ${ids.length} changes, ${expected.length} committed`)
        }
      }
    }),
    { numRuns: 12, seed: 20261201, endOnFailure: true },
  )
  t.pass('12 interleavings of up to 5 writers and a reader')
})

t.test('a change committed late is never skipped: its seq waits for it', async (t) => {
  const app = await buildTestApp(t)
  const u = await userWithToken(app)
  let releaseA!: () => void
  const holdA = new Promise<void>((resolve) => {
    releaseA = resolve
  })
  let recordedA!: () => void
  const aRecorded = new Promise<void>((resolve) => {
    recordedA = resolve
  })
  const a = app.db.transaction(async (tx) => {
    await app.changes.record(tx, u.user.id, { type: 'checkin', action: 'created', id: 'a' })
    recordedA()
    await holdA
  })
  await aRecorded
  // B records the same user's change meanwhile (another connection on PostgreSQL): it waits for A.
  const b = app.db.transaction(async (tx) => {
    await app.changes.record(tx, u.user.id, { type: 'checkin', action: 'created', id: 'b' })
  })
  if (app.database.kind === 'postgres') {
    const during = await u.call('GET', '/v1/sync')
    t.same(during.body, { changes: [], next_cursor: '0', has_more: false }, 'nothing visible while A is open')
  }
  releaseA()
  await Promise.all([a, b])
  const after = await u.call('GET', '/v1/sync')
  t.same(
    after.body.changes.map((c: { seq: number; id: string }) => [c.seq, c.id]),
    [
      [1, 'a'],
      [2, 'b'],
    ],
  )
})
