import t from 'tap'
import { keysetRows } from '../../db/keyset.ts'
import { loginAttempts } from '../../db/schema/index.ts'
import { type ExportSection, exportSections } from '../../routes/account/export-sections.ts'
import { exportDocument } from '../../routes/account/export.ts'
import { addDays, todayIn } from '../../routes/journal/zone.ts'
import { buildTestApp } from '../helpers/app.ts'
import { login, userWithToken } from '../helpers/fixtures.ts'

/** The export's sections, in document order. */
const SECTION_NAMES = [
  'profile',
  'settings',
  'sessions',
  'auth_history',
  'measurements',
  'sleep',
  'shares',
  'groups',
  'telemetry',
  'firmware_install_reports',
  'checkins',
  'day_feedback',
  'activities',
  'intentions',
  'insights',
  'second_factors',
  'oauth_authorizations',
]

t.test('the export holds every record of mine and nothing of anyone else', async (t) => {
  const app = await buildTestApp(t)
  const a = await userWithToken(app)
  const b = await userWithToken(app)
  await login(app, a.user)
  await app.inject({ method: 'PUT', url: '/v1/users/me/settings', headers: a.headers, payload: { units: 'imperial' } })
  await app.inject({ method: 'PATCH', url: '/v1/users/me', headers: a.headers, payload: { weight: 70.5 } })
  await app.inject({ method: 'PUT', url: '/v1/users/me/settings', headers: b.headers, payload: { language: 'fi' } })
  // More rows than one batch (1,000), so the keyset pagination is crossed twice.
  const base = Date.parse('2024-01-01T00:00:00Z')
  const rows = Array.from({ length: 2500 }, (_, i) => ({
    userId: a.user.id,
    email: a.user.email,
    success: i % 2 === 0,
    reason: i % 2 === 0 ? null : 'invalid_credentials',
    ip: '10.1.2.3',
    // Pairs share a timestamp: the id breaks the tie.
    createdAt: new Date(base + Math.floor(i / 2) * 1000),
  }))
  for (let i = 0; i < rows.length; i += 500) await app.db.insert(loginAttempts).values(rows.slice(i, i + 500))
  // The journal: three days of day feedback make a journaling-streak insight, which gets a reflection.
  const call = (headers: Record<string, string>, method: 'POST' | 'PUT' | 'GET', url: string, payload?: object) =>
    app.inject({ method, url, headers, ...(payload ? { payload } : {}) })
  const today = todayIn('UTC')
  for (let i = 0; i < 3; i++) await call(a.headers, 'PUT', `/v1/day-feedback/${addDays(today, -i)}`, { mood: 4 })
  await call(a.headers, 'POST', '/v1/checkins', { mood: 5, note: 'a fine day' })
  await call(a.headers, 'POST', '/v1/activities', { kind: 'walk' })
  await call(a.headers, 'POST', '/v1/intentions', { kind: 'focus' })
  const [insight] = (await call(a.headers, 'GET', '/v1/insights')).json().data
  await call(a.headers, 'POST', `/v1/insights/${insight.id}/reflections`, { text: 'Writing helps.' })
  await call(b.headers, 'POST', '/v1/checkins', { mood: 1, note: 'secret of b' })

  const res = await app.inject({ method: 'GET', url: '/v1/users/me/export', headers: a.headers })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  t.match(res.headers['content-disposition'], /^attachment; filename="nowatch-export-\d{4}-\d\d-\d\d\.json"$/)
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(res.headers['content-length'], undefined, 'streamed, not buffered')
  const doc = res.json()
  t.match(doc, { format: 'nowatch-export', version: 1, user_id: a.user.id, exported_at: /Z$/ })
  t.same(Object.keys(doc.sections), SECTION_NAMES)

  t.equal(doc.sections.profile.length, 1)
  t.match(doc.sections.profile[0], { id: a.user.id, email: a.user.email, weight: 70.5, role: 'user' })
  t.notOk('password_hash' in doc.sections.profile[0] || 'passwordHash' in doc.sections.profile[0])
  t.same(
    doc.sections.settings.map((s: { key: string; value: unknown }) => [s.key, s.value]),
    [['units', 'imperial']],
  )
  t.equal(doc.sections.sessions.length, 2)
  t.notOk(JSON.stringify(doc.sections.sessions).includes('jti'), 'no refresh token ids')
  const history = doc.sections.auth_history as Array<{ id: string; date_time: string }>
  t.equal(history.length, 2500 + 2, 'every attempt: the inserted ones and the two logins')
  t.equal(new Set(history.map((h) => h.id)).size, history.length, 'no repeats')
  const times = history.map((h) => h.date_time)
  t.same(times, [...times].sort(), 'oldest first')

  t.match(doc.sections.checkins, [{ mood: 5, note: 'a fine day' }])
  t.equal(doc.sections.checkins.length, 1)
  t.same(
    doc.sections.day_feedback.map((d: { date: string; mood: number }) => [d.date, d.mood]),
    [2, 1, 0].map((i) => [addDays(today, -i), 4]),
  )
  t.match(doc.sections.activities, [{ kind: 'walk', running: true }])
  t.match(doc.sections.intentions, [{ kind: 'focus', running: true }])
  t.equal(doc.sections.activities.length + doc.sections.intentions.length, 2)
  t.match(doc.sections.insights, [
    { id: insight.id, kind: 'journaling_streak', reflections: [{ text: 'Writing helps.' }] },
  ])
  t.equal(doc.sections.insights.length, 1)

  const text = res.body
  t.notOk(text.includes(b.user.id) || text.includes(b.user.email), "nothing of B's")
  t.notOk(text.includes('"fi"'))
  t.notOk(text.includes('secret of b'))

  const bDoc = (await app.inject({ method: 'GET', url: '/v1/users/me/export', headers: b.headers })).json()
  t.equal(bDoc.user_id, b.user.id)
  t.equal(bDoc.sections.auth_history.length, 1)
  t.notOk(JSON.stringify(bDoc).includes(a.user.id))

  t.equal((await app.inject({ method: 'GET', url: '/v1/users/me/export' })).statusCode, 401)
})

t.test('the document is written section by section as rows arrive', async (t) => {
  async function* numbers(n: number) {
    for (let i = 0; i < n; i++) yield { n: i, pad: 'x'.repeat(100) }
  }
  const sections: ExportSection[] = [
    { name: 'empty', rows: async function* () {} },
    { name: 'many', rows: () => numbers(3000) },
  ]
  const chunks: string[] = []
  for await (const c of exportDocument({} as never, 'u1', sections)) chunks.push(c)
  t.ok(chunks.length > 3, `written in ${chunks.length} chunks, not one`)
  t.ok(
    chunks.slice(0, -1).every((c) => c.length < 80_000),
    'each chunk stays small',
  )
  const doc = JSON.parse(chunks.join(''))
  t.same(doc.sections.empty, [])
  t.equal(doc.sections.many.length, 3000)
  t.equal(doc.sections.many[2999].n, 2999)

  const failing: ExportSection[] = [
    {
      name: 'broken',
      rows: async function* () {
        yield { ok: 1 }
        throw new Error('database went away')
      },
    },
  ]
  await t.rejects(async () => {
    for await (const _ of exportDocument({} as never, 'u1', failing)) {
    }
  }, /database went away/)
})

t.test('keysetRows walks the batches by key', async (t) => {
  const all = Array.from({ length: 25 }, (_, i) => ({ id: i }))
  const calls: Array<number | undefined> = []
  const rows: unknown[] = []
  for await (const r of keysetRows(
    async (after: number | undefined, batch) => {
      calls.push(after)
      return all.filter((x) => after === undefined || x.id > after).slice(0, batch)
    },
    (r) => r.id,
    (r) => ({ n: r.id }),
    10,
  )) {
    rows.push(r)
  }
  t.equal(rows.length, 25)
  t.same(calls, [undefined, 9, 19])
})

t.test('the registry names the sections of this tree', async (t) => {
  t.same(
    exportSections.map((s) => s.name),
    SECTION_NAMES,
  )
})
