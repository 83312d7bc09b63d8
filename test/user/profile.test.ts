import t from 'tap'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'

t.test('profile: read, change, clear, refuse', async (t) => {
  const app = await buildTestApp(t)
  const a = await userWithToken(app)
  const b = await userWithToken(app)
  const get = (headers = a.headers) => app.inject({ method: 'GET', url: '/v1/users/me', headers })
  const patch = (payload: unknown, headers = a.headers) =>
    app.inject({ method: 'PATCH', url: '/v1/users/me', headers, payload: payload as object })

  t.test('GET answers the profile with its defaults', async (t) => {
    const res = await get()
    t.equal(res.statusCode, 200)
    t.same(res.json(), {
      id: a.user.id,
      email: a.user.email,
      first_name: 'Test',
      last_name: 'User',
      date_of_birth: null,
      sex: null,
      weight: null,
      height: null,
      sleep_time_goal: 28800,
      tip_audiences: [],
      time_zone: 'UTC',
      email_verified: true,
      pending_email: null,
      created: res.json().created,
      updated: res.json().updated,
    })
    t.match(res.json().created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  })

  t.test('PATCH sets every writable field and answers the updated profile', async (t) => {
    const before = (await get()).json()
    const res = await patch({
      first_name: ' Sandy ',
      last_name: 'Cheeks',
      date_of_birth: '1990-02-28',
      sex: 'female',
      weight: 61.5,
      height: 168,
      sleep_time_goal: 27000,
      tip_audiences: ['general', 'sleep'],
      time_zone: 'Europe/Helsinki',
    })
    t.equal(res.statusCode, 200, res.body)
    t.match(res.json(), {
      id: a.user.id,
      first_name: 'Sandy',
      last_name: 'Cheeks',
      date_of_birth: '1990-02-28',
      sex: 'female',
      weight: 61.5,
      height: 168,
      sleep_time_goal: 27000,
      tip_audiences: ['general', 'sleep'],
      time_zone: 'Europe/Helsinki',
      created: before.created,
    })
    t.ok(res.json().updated >= before.updated, 'updated moves forward')
    t.same((await get()).json(), res.json(), 'GET answers the same')
  })

  t.test('a subset leaves the rest alone', async (t) => {
    const res = await patch({ weight: 62 })
    t.match(res.json(), { weight: 62, height: 168, sex: 'female', first_name: 'Sandy' })
  })

  t.test('null clears the nullable fields', async (t) => {
    const res = await patch({ date_of_birth: null, sex: null, weight: null, height: null })
    t.equal(res.statusCode, 200)
    t.match(res.json(), { date_of_birth: null, sex: null, weight: null, height: null, first_name: 'Sandy' })
  })

  t.test('null on a never-null field is validation_failed, and nothing changes', async (t) => {
    for (const field of ['first_name', 'last_name', 'sleep_time_goal', 'tip_audiences', 'time_zone']) {
      const res = await patch({ [field]: null, weight: 70 })
      t.equal(res.statusCode, 400, field)
      t.equal(res.json().error, 'validation_failed')
      t.ok(
        res.json().details.some((d: { field: string }) => d.field === field),
        `${field} named in details`,
      )
    }
    t.equal((await get()).json().weight, null, 'the valid part of a refused body was not applied')
  })

  t.test('every field is checked', async (t) => {
    const bad: Array<[string, unknown]> = [
      ['first_name', ''],
      ['first_name', '   '],
      ['first_name', 'x'.repeat(151)],
      ['first_name', 5],
      ['last_name', ''],
      ['date_of_birth', '1990-13-01'],
      ['date_of_birth', '1990-02-30'],
      ['date_of_birth', '19900101'],
      ['date_of_birth', '2999-01-01'],
      ['date_of_birth', '1899-12-31'],
      ['sex', 'other'],
      ['sex', ''],
      ['weight', 0],
      ['weight', 1.9],
      ['weight', 501],
      ['weight', '70'],
      ['height', 29],
      ['height', 276],
      ['sleep_time_goal', 3599],
      ['sleep_time_goal', 57601],
      ['sleep_time_goal', 28800.5],
      ['sleep_time_goal', '28800'],
      ['tip_audiences', ['general', 'general']],
      ['tip_audiences', ['astrology']],
      ['tip_audiences', 'general'],
      ['time_zone', 'Mars/Olympus_Mons'],
      ['time_zone', '+02:00'],
      ['time_zone', 'UTC+2'],
      ['time_zone', ''],
    ]
    for (const [field, value] of bad) {
      const res = await patch({ [field]: value })
      t.equal(res.statusCode, 400, `${field}=${JSON.stringify(value)}`)
      t.match(res.json(), { error: 'validation_failed', details: [{ field }] }, `${field} named`)
    }
  })

  t.test('edge values are accepted', async (t) => {
    const today = new Date().toISOString().slice(0, 10)
    const res = await patch({
      date_of_birth: '1900-01-01',
      weight: 2,
      height: 275,
      sleep_time_goal: 3600,
      tip_audiences: [],
    })
    t.equal(res.statusCode, 200, res.body)
    t.equal((await patch({ date_of_birth: today })).statusCode, 200, 'born today')
    t.equal((await patch({ time_zone: 'europe/helsinki' })).json().time_zone, 'Europe/Helsinki', 'case normalised')
    t.equal((await patch({ time_zone: 'Asia/Calcutta' })).json().time_zone, 'Asia/Calcutta', 'backward names')
    t.equal((await patch({ time_zone: 'UTC' })).json().time_zone, 'UTC')
  })

  t.test('read-only fields are ignored; unknown fields are refused', async (t) => {
    const before = (await get()).json()
    const res = await patch({
      id: b.user.id,
      email: a.user.email.toUpperCase(),
      email_verified: false,
      pending_email: 'stolen@example.com',
      created: '2000-01-01T00:00:00.000Z',
      updated: '2000-01-01T00:00:00.000Z',
      first_name: 'Pearl',
    })
    t.equal(res.statusCode, 200)
    t.match(res.json(), { id: a.user.id, email: a.user.email, email_verified: true, created: before.created })
    t.equal(res.json().first_name, 'Pearl')
    t.not(res.json().updated, '2000-01-01T00:00:00.000Z')
    t.same(res.json(), (await get()).json(), 'and the whole GET answer can be sent back')
    t.equal((await patch((await get()).json())).statusCode, 200)

    const unknown = await patch({ nickname: 'P', first_name: 'Q' })
    t.equal(unknown.statusCode, 400)
    t.same(unknown.json().details, [{ field: 'nickname', problem: 'is not an allowed field' }])
    const role = await patch({ role: 'admin' })
    t.equal(role.statusCode, 400, 'role cannot be set')
    t.equal((await get()).json().first_name, 'Pearl')
  })

  t.test('a non-object body and a missing token are refused', async (t) => {
    t.equal((await patch([1, 2])).statusCode, 400)
    t.equal((await get({} as never)).statusCode, 401)
    t.equal((await patch({ weight: 70 }, {} as never)).statusCode, 401)
  })

  t.test('user B only ever sees and changes B', async (t) => {
    const res = await get(b.headers)
    t.equal(res.json().id, b.user.id)
    t.equal(res.json().email, b.user.email)
    const changed = await patch({ id: a.user.id, first_name: 'Bee' }, b.headers)
    t.equal(changed.json().id, b.user.id)
    t.equal((await get()).json().first_name, 'Pearl', "A's profile is untouched")
  })
})
