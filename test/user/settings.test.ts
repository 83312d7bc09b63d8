import t from 'tap'
import { SETTINGS, SETTING_KEYS } from '../../routes/user/settings.ts'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'

const DEFAULTS = Object.fromEntries(SETTING_KEYS.map((k) => [k, SETTINGS[k].default]))

t.test('account settings', async (t) => {
  const app = await buildTestApp(t)
  const a = await userWithToken(app)
  const b = await userWithToken(app)
  const get = (headers = a.headers) => app.inject({ method: 'GET', url: '/v1/users/me/settings', headers })
  const put = (payload: unknown, headers = a.headers) =>
    app.inject({ method: 'PUT', url: '/v1/users/me/settings', headers, payload: payload as object })

  t.test('every key reads as its default at first', async (t) => {
    const res = await get()
    t.equal(res.statusCode, 200)
    t.same(res.json(), DEFAULTS)
    t.same(res.json(), {
      'notifications-security__email': true,
      units: 'metric',
      week_start: 'monday',
      language: 'en',
    })
  })

  t.test('PUT sets some keys, keeps the others, answers all', async (t) => {
    const res = await put({
      'notifications-security__email': false,
      units: 'imperial',
      language: 'pt-BR',
    })
    t.equal(res.statusCode, 200, res.body)
    const expected = {
      ...DEFAULTS,
      'notifications-security__email': false,
      units: 'imperial',
      language: 'pt-BR',
    }
    t.same(res.json(), expected)
    t.same((await get()).json(), expected, 'GET agrees')
    t.same((await put({ week_start: 'sunday' })).json(), { ...expected, week_start: 'sunday' }, 'a later PUT adds')
  })

  t.test('null resets a key to its default', async (t) => {
    const res = await put({ units: null, 'notifications-security__email': null })
    t.match(res.json(), { units: 'metric', 'notifications-security__email': true, language: 'pt-BR' })
  })

  t.test('unknown keys and wrong types are refused, nothing is stored', async (t) => {
    const before = (await get()).json()
    const cases: Array<[string, unknown]> = [
      ['notifications-tariffs__sms', true],
      ['units', 'furlongs'],
      ['notifications-security__email', 1],
      ['notifications-security__email', 'true'],
      // Settings that promised push and mail nothing sent are gone.
      ['notifications-insights__push', true],
      ['notifications-weekly_report__email', true],
      ['reminders-checkin__time', '07:30'],
      ['language', 'english'],
      ['week_start', 7],
    ]
    for (const [key, value] of cases) {
      // With a valid key beside it: a bad key refuses the whole PUT.
      const res = await put({ ...(key === 'units' ? { language: 'fi' } : { units: 'imperial' }), [key]: value })
      t.equal(res.statusCode, 400, `${key}=${JSON.stringify(value)}`)
      t.match(res.json(), { error: 'validation_failed', details: [{ field: key }] })
    }
    t.same((await get()).json(), before, 'unchanged')
  })

  t.test("B's settings are B's own", async (t) => {
    t.same((await get(b.headers)).json(), DEFAULTS, "B does not see A's settings")
    await put({ units: 'imperial' }, b.headers)
    t.equal((await get()).json().units, 'metric', "B's change does not touch A")
    t.equal((await get({} as never)).statusCode, 401)
  })
})
