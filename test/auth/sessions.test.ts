import t from 'tap'
import { buildTestApp } from '../helpers/app.ts'
import { bearer, createUser, login, sharedClient } from '../helpers/fixtures.ts'

const IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1'

t.test('my sessions', async (t) => {
  const app = await buildTestApp(t)
  const alice = await createUser(app)
  const bob = await createUser(app)
  const client = await sharedClient(app)
  const loginFrom = async (user: typeof alice, ua: string) => {
    const res = await app.inject({
      method: 'POST',
      url: '/v2/auth/login',
      headers: { 'x-auth-token': client, 'user-agent': ua },
      payload: { email: user.email, password: user.password },
    })
    return res.json() as { access: string; refresh: string }
  }
  const phone = await loginFrom(alice, IPHONE)
  const laptop = await loginFrom(alice, 'curl/8.5.0')
  const third = await login(app, alice)
  const bobs = await login(app, bob)
  const list = (tokens: { access: string }, query = '') =>
    app.inject({ method: 'GET', url: `/v1/users/me/sessions${query}`, headers: bearer(tokens) })

  t.test('lists every active session, newest first, the current one marked', async (t) => {
    const res = await list(laptop)
    t.equal(res.statusCode, 200)
    const { data, next_cursor } = res.json()
    t.equal(data.length, 3)
    t.equal(next_cursor, null)
    t.same(
      data.map((s: { current: boolean }) => s.current),
      [false, true, false],
      'the laptop session is this one',
    )
    const iphone = data[2]
    t.match(iphone, {
      client: { name: 'test app' },
      ip: '127.0.0.1',
      user_agent: IPHONE,
      browser: { family: 'Mobile Safari', version: '17.4' },
      operating_system: { family: 'iOS', version: '17.4' },
      device: { brand: 'Apple', family: 'mobile', model: 'iPhone' },
    })
    t.match(iphone.created, /Z$/)
    t.match(iphone.last_used, /Z$/)
    t.match(iphone.expires, /Z$/)
  })

  t.test('pages without gaps or repeats', async (t) => {
    const first = (await list(phone, '?limit=2')).json()
    t.equal(first.data.length, 2)
    t.type(first.next_cursor, 'string')
    const second = (await list(phone, `?limit=2&cursor=${first.next_cursor}`)).json()
    t.equal(second.data.length, 1)
    t.equal(second.next_cursor, null)
    const ids = [...first.data, ...second.data].map((s: { id: string }) => s.id)
    t.equal(new Set(ids).size, 3)
    t.equal((await list(phone, '?cursor=garbage')).statusCode, 400)
  })

  t.test("B sees only B's sessions and cannot end A's", async (t) => {
    const bobList = (await list(bobs)).json().data
    t.equal(bobList.length, 1)
    const aliceIds = (await list(phone)).json().data.map((s: { id: string }) => s.id)
    t.notOk(bobList.some((s: { id: string }) => aliceIds.includes(s.id)))
    for (const id of aliceIds) {
      const res = await app.inject({ method: 'DELETE', url: `/v1/users/me/sessions/${id}`, headers: bearer(bobs) })
      t.equal(res.statusCode, 404)
      t.same(res.json(), { error: 'not_found', message: 'No such active session.' })
    }
    t.equal((await list(phone)).json().data.length, 3, "A's sessions all live")
  })

  t.test('ending one session stops its tokens at once, the others live on', async (t) => {
    const target = (await list(phone)).json().data.find((s: { current: boolean }) => !s.current) as { id: string }
    const laptopSession = (await list(laptop)).json().data.find((s: { current: boolean }) => s.current).id
    const res = await app.inject({
      method: 'DELETE',
      url: `/v1/users/me/sessions/${target.id}`,
      headers: bearer(phone),
    })
    t.same(res.json(), { status: 'success' })
    const remaining = (await list(phone)).json().data.map((s: { id: string }) => s.id)
    t.notOk(remaining.includes(target.id))
    t.equal(remaining.length, 2)
    const ended = target.id === laptopSession ? laptop : third
    const refused = await list(ended)
    t.equal(refused.statusCode, 401)
    t.equal(refused.json().error, 'session_revoked')
    const refresh = await app.inject({
      method: 'POST',
      url: '/v1/auth/refresh',
      headers: { 'x-auth-token': client },
      payload: { refresh: ended.refresh },
    })
    t.equal(refresh.statusCode, 401, 'its refresh token too')
    const again = await app.inject({
      method: 'DELETE',
      url: `/v1/users/me/sessions/${target.id}`,
      headers: bearer(phone),
    })
    t.equal(again.statusCode, 404, 'an ended session is not found')
  })

  t.test('ending the current session is a logout; a bad id is 400', async (t) => {
    const me = (await list(phone)).json().data.find((s: { current: boolean }) => s.current).id
    const res = await app.inject({ method: 'DELETE', url: `/v1/users/me/sessions/${me}`, headers: bearer(phone) })
    t.equal(res.statusCode, 200)
    t.equal((await list(phone)).statusCode, 401)
    const bad = await app.inject({ method: 'DELETE', url: '/v1/users/me/sessions/nope', headers: bearer(bobs) })
    t.equal(bad.statusCode, 400)
    t.equal(bad.json().error, 'validation_failed')
  })
})
