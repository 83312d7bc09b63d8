import t from 'tap'
import { exportRows as exportActivities } from '../../routes/activity/index.ts'
import { exportRows as exportIntentions } from '../../routes/intention/index.ts'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { daysAgo } from '../helpers/journal.ts'
import { ingest } from '../helpers/measurement.ts'

const FAMILIES = [
  {
    path: '/v1/activities',
    noun: 'activity',
    kind: 'run',
    otherKind: 'yoga',
    badKind: 'focus',
    extra: { perceived_exertion: 7 },
    badExtra: [{ perceived_exertion: 11 }, 'perceived_exertion'] as const,
    foreign: { outcome_rating: 3 },
  },
  {
    path: '/v1/intentions',
    noun: 'intention',
    kind: 'focus',
    otherKind: 'sleep_better',
    badKind: 'run',
    extra: { outcome_rating: 4, outcome_note: 'got the report done' },
    badExtra: [{ outcome_rating: 0 }, 'outcome_rating'] as const,
    foreign: { perceived_exertion: 3 },
  },
]

t.test('sessions wrapper: activities and intentions', async (t) => {
  const app = await buildTestApp(t)

  for (const f of FAMILIES) {
    t.test(`${f.noun}: start, end, edit, get, list, delete`, async (t) => {
      const me = await userWithToken(app)
      const started = await me.call('POST', f.path, { kind: f.kind, notes: 'morning' })
      t.equal(started.status, 201)
      const extrasNull = Object.fromEntries(Object.keys(f.extra).map((k) => [k, null]))
      t.match(started.body, {
        id: String,
        kind: f.kind,
        ended_at: null,
        running: true,
        notes: 'morning',
        ...extrasNull,
      })
      t.same(
        Object.keys(started.body).sort(),
        [
          'created_at',
          'ended_at',
          'id',
          'kind',
          'notes',
          'running',
          'started_at',
          ...Object.keys(f.extra),
          'updated_at',
        ].sort(),
        "only this family's fields",
      )
      const id = started.body.id

      const second = await me.call('POST', f.path, { kind: f.otherKind })
      t.same(second.body, {
        error: 'session_running',
        message: `Another ${f.noun} is still running; end it before starting a new one.`,
      })
      t.equal(second.status, 409)

      // A finished session recorded after the fact does not count as running.
      const past = await me.call('POST', f.path, {
        kind: f.otherKind,
        started_at: daysAgo(2).toISOString(),
        ended_at: daysAgo(2 - 1 / 24).toISOString(),
      })
      t.equal(past.status, 201)
      t.equal(past.body.running, false)

      const ended = await me.call('POST', `${f.path}/${id}/end`, { ...f.extra })
      t.equal(ended.status, 200)
      t.match(ended.body, { id, running: false, ended_at: String, ...f.extra })
      t.ok(Date.parse(ended.body.ended_at) >= Date.parse(ended.body.started_at))
      t.same(await me.call('POST', `${f.path}/${id}/end`, {}), {
        status: 409,
        body: { error: 'session_ended', message: `This ${f.noun} has already ended.` },
      })

      const { summary, ...got } = (await me.call('GET', `${f.path}/${id}`)).body
      t.same(got, ended.body)
      t.same(summary, {
        duration_s: Math.floor((Date.parse(ended.body.ended_at) - Date.parse(ended.body.started_at)) / 1000),
        heart_rate: { avg: null, max: null, min: null, count: 0 },
        steps: 0,
        active_energy: null,
      })

      const edited = await me.call('PATCH', `${f.path}/${id}`, { kind: f.otherKind, notes: null })
      t.equal(edited.status, 200)
      t.match(edited.body, { id, kind: f.otherKind, notes: null, ...f.extra })

      // Reopen it, then it blocks a new start again.
      t.match((await me.call('PATCH', `${f.path}/${id}`, { ended_at: null })).body, { running: true, ended_at: null })
      t.equal((await me.call('POST', f.path, { kind: f.kind })).status, 409)
      t.match(await me.call('PATCH', `${f.path}/${past.body.id}`, { ended_at: null }), {
        status: 409,
        body: { error: 'session_running' },
      })
      t.equal((await me.call('POST', `${f.path}/${id}/end`)).status, 200, 'end takes no body')
      const next = await me.call('POST', f.path, { kind: f.kind })
      t.equal(next.status, 201, 'a new one starts once the other ended')

      const list = await me.call('GET', f.path)
      t.same(
        list.body.data.map((s: { id: string }) => s.id),
        [next.body.id, id, past.body.id],
        'newest start first',
      )
      t.same(
        (await me.call('GET', `${f.path}?running=true`)).body.data.map((s: { id: string }) => s.id),
        [next.body.id],
      )
      t.same(
        (await me.call('GET', `${f.path}?kind=${f.otherKind}`)).body.data.map((s: { id: string }) => s.id),
        [id, past.body.id],
      )
      t.same(
        (await me.call('GET', `${f.path}?to=${daysAgo(1).toISOString()}`)).body.data.map((s: { id: string }) => s.id),
        [past.body.id],
      )

      const exported = []
      for await (const row of (f.noun === 'activity' ? exportActivities : exportIntentions)(app.db, me.user.id))
        exported.push(row)
      t.same(
        exported.map((r) => r.id),
        [past.body.id, id, next.body.id],
      )

      t.same(await me.call('DELETE', `${f.path}/${id}`), { status: 200, body: { status: 'success' } })
      t.match(await me.call('GET', `${f.path}/${id}`), { status: 404, body: { message: `No such ${f.noun}.` } })
    })

    t.test(`${f.noun}: bad input answers 400 validation_failed with the field`, async (t) => {
      const me = await userWithToken(app)
      const hourAgo = daysAgo(1 / 24).toISOString()
      const cases: Array<[unknown, string]> = [
        [{ kind: f.badKind }, 'kind'],
        [{ kind: 'sleeping-in' }, 'kind'],
        [{}, 'kind'],
        [{ kind: f.kind, notes: 'x'.repeat(2001) }, 'notes'],
        [{ kind: f.kind, ...f.badExtra[0] }, f.badExtra[1]],
        [{ kind: f.kind, ...f.foreign }, Object.keys(f.foreign)[0]],
        [{ kind: f.kind, started_at: hourAgo, ended_at: daysAgo(2 / 24).toISOString() }, 'ended_at'],
        [{ kind: f.kind, started_at: new Date(Date.now() + 3600_000).toISOString() }, 'started_at'],
        [{ kind: f.kind, started_at: 'now' }, 'started_at'],
      ]
      for (const [payload, field] of cases) {
        const res = await me.call('POST', f.path, payload)
        t.equal(res.status, 400, JSON.stringify(payload).slice(0, 80))
        t.equal(res.body.error, 'validation_failed')
        t.ok(
          res.body.details.some((d: { field: string }) => d.field === field),
          `${field} in ${JSON.stringify(res.body.details)}`,
        )
      }
      const { body } = await me.call('POST', f.path, { kind: f.kind, started_at: hourAgo })
      t.match(await me.call('POST', `${f.path}/${body.id}/end`, { ended_at: daysAgo(2 / 24).toISOString() }), {
        status: 400,
        body: {
          error: 'validation_failed',
          details: [{ field: 'ended_at', problem: 'must not be before started_at' }],
        },
      })
      t.match(
        await me.call('PATCH', `${f.path}/${body.id}`, { started_at: new Date().toISOString(), ended_at: hourAgo }),
        {
          status: 400,
          body: { details: [{ field: 'ended_at' }] },
        },
      )
      await me.call('POST', `${f.path}/${body.id}/end`, {})
      // Moving the start past an existing end is caught against the stored end.
      t.match(await me.call('PATCH', `${f.path}/${body.id}`, { started_at: new Date().toISOString() }), {
        status: 400,
        body: { details: [{ field: 'ended_at' }] },
      })
      t.match(await me.call('PATCH', `${f.path}/${body.id}`, f.badExtra[0]), {
        status: 400,
        body: { details: [{ field: f.badExtra[1] }] },
      })
      t.match(await me.call('GET', `${f.path}?kind=${f.badKind}`), {
        status: 400,
        body: { error: 'validation_failed' },
      })
    })

    t.test(`${f.noun}: another user's ids answer 404 like missing ones`, async (t) => {
      const alice = await userWithToken(app)
      const bob = await userWithToken(app)
      const { body } = await alice.call('POST', f.path, { kind: f.kind, notes: 'private' })
      const missing = '00000000-0000-4000-8000-000000000000'
      const message = `No such ${f.noun}.`
      for (const id of [body.id, missing]) {
        t.same(await bob.call('GET', `${f.path}/${id}`), { status: 404, body: { error: 'not_found', message } })
        t.same(await bob.call('PATCH', `${f.path}/${id}`, { notes: 'mine' }), {
          status: 404,
          body: { error: 'not_found', message },
        })
        t.same(await bob.call('POST', `${f.path}/${id}/end`, {}), {
          status: 404,
          body: { error: 'not_found', message },
        })
        t.same(await bob.call('DELETE', `${f.path}/${id}`), { status: 404, body: { error: 'not_found', message } })
      }
      t.same((await bob.call('GET', f.path)).body, { data: [], next_cursor: null })
      t.equal((await bob.call('POST', f.path, { kind: f.kind })).status, 201, "alice's running one does not block bob")
      t.match((await alice.call('GET', `${f.path}/${body.id}`)).body, { running: true, notes: 'private' }, 'untouched')
    })
  }

  t.test('the two families are apart: ids and running rules do not cross', async (t) => {
    const me = await userWithToken(app)
    const activity = await me.call('POST', '/v1/activities', { kind: 'walk' })
    const intention = await me.call('POST', '/v1/intentions', { kind: 'relax' })
    t.equal(activity.status, 201)
    t.equal(intention.status, 201, 'a running activity does not block an intention')
    t.equal((await me.call('GET', `/v1/intentions/${activity.body.id}`)).status, 404)
    t.equal((await me.call('DELETE', `/v1/activities/${intention.body.id}`)).status, 404)
  })

  for (const f of FAMILIES) {
    t.test(`${f.noun}: the single GET summarises my measurements inside the window`, async (t) => {
      const alice = await userWithToken(app)
      const bob = await userWithToken(app)
      // Not on a minute boundary, so the window's edge minutes are partial.
      const t0 = Math.floor((Date.now() - 3 * 3_600_000) / 60_000) * 60_000 + 20_500
      const end = t0 + 30 * 60_000
      const at = (ms: number) => new Date(ms).toISOString()
      const sample = (type: string, ms: number, value: number) => ({ type, timestamp: at(ms), value })
      await ingest(app, alice.headers, [
        sample('heart_rate', t0 - 1, 60),
        sample('heart_rate', t0, 90),
        sample('heart_rate', t0 + 10 * 60_000, 120),
        sample('heart_rate', end - 1, 105),
        sample('heart_rate', end, 200),
        sample('steps', t0 - 1000, 999),
        sample('steps', t0 + 1000, 10),
        sample('steps', t0 + 15 * 60_000, 20),
        sample('steps', end - 1000, 30),
        sample('active_energy', t0 + 60_000, 12.5),
        sample('active_energy', t0 + 120_000, 7.5),
        sample('stress', t0 + 60_000, 50),
      ])
      // Another watch of the same user counts too.
      await ingest(app, alice.headers, [sample('heart_rate', t0 + 5 * 60_000, 105)], 'second-watch')
      // Bob's samples in the very same window never count for Alice.
      await ingest(app, bob.headers, [
        sample('heart_rate', t0 + 60_000, 200),
        sample('steps', t0 + 60_000, 5000),
        sample('active_energy', t0 + 60_000, 900),
      ])

      const done = await alice.call('POST', f.path, { kind: f.kind, started_at: at(t0), ended_at: at(end) })
      const got = await alice.call('GET', `${f.path}/${done.body.id}`)
      t.equal(got.status, 200)
      t.same(got.body, {
        ...done.body,
        summary: {
          duration_s: 1800,
          heart_rate: { avg: 105, max: 120, min: 90, count: 4 },
          steps: 60,
          active_energy: 20,
        },
      })

      // A running session's window ends now: a sample in the future is not in it yet.
      const startedAt = Date.now() - 10 * 60_000
      await ingest(app, alice.headers, [
        sample('heart_rate', startedAt + 60_000, 80),
        sample('steps', startedAt + 120_000, 7),
        sample('heart_rate', Date.now() + 120_000, 150),
        sample('steps', Date.now() + 120_000, 1000),
      ])
      const running = await alice.call('POST', f.path, { kind: f.kind, started_at: at(startedAt) })
      const live = (await alice.call('GET', `${f.path}/${running.body.id}`)).body
      t.match(live, { running: true, ended_at: null })
      const { duration_s: liveDuration, ...liveRest } = live.summary
      t.same(liveRest, {
        heart_rate: { avg: 80, max: 80, min: 80, count: 1 },
        steps: 7,
        active_energy: null,
      })
      t.ok(liveDuration >= 600, `running window measured to now (${liveDuration} s)`)

      // Bob's own session over the same window sees only Bob's samples.
      const bobs = await bob.call('POST', f.path, { kind: f.kind, started_at: at(t0), ended_at: at(end) })
      t.same((await bob.call('GET', `${f.path}/${bobs.body.id}`)).body.summary, {
        duration_s: 1800,
        heart_rate: { avg: 200, max: 200, min: 200, count: 1 },
        steps: 5000,
        active_energy: 900,
      })

      const list = await alice.call('GET', f.path)
      t.equal(list.body.data.length, 2)
      t.notOk(
        list.body.data.some((s: object) => 'summary' in s),
        'lists carry no summary',
      )
    })
  }

  t.test('two starts at once: one runs, the other is refused', async (t) => {
    const me = await userWithToken(app)
    const results = await Promise.all([
      me.call('POST', '/v1/activities', { kind: 'walk' }),
      me.call('POST', '/v1/activities', { kind: 'run' }),
    ])
    t.same(results.map((r) => r.status).sort(), [201, 409])
    t.equal((await me.call('GET', '/v1/activities?running=true')).body.data.length, 1)
  })

  t.test('pagination has no gaps or repeats on equal start times', async (t) => {
    const me = await userWithToken(app)
    const at = daysAgo(3).toISOString()
    const ids = new Set<string>()
    for (let i = 0; i < 5; i++) {
      const res = await me.call('POST', '/v1/activities', { kind: 'walk', started_at: at, ended_at: at })
      ids.add(res.body.id)
    }
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const res = await me.call('GET', `/v1/activities?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
      seen.push(...res.body.data.map((s: { id: string }) => s.id))
      cursor = res.body.next_cursor
    } while (cursor)
    t.equal(seen.length, 5)
    t.same(new Set(seen), ids)
  })
})
