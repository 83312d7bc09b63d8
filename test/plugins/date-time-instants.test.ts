import { eq } from 'drizzle-orm'
import t from 'tap'
import { users } from '../../db/schema/index.ts'
import { buildTestApp } from '../helpers/app.ts'
import { PASSWORD, createClient, uniqueEmail, userWithToken } from '../helpers/fixtures.ts'

// What the routes store and compare for a date-time, in every form the `date-time` format accepts: any
// number of fraction digits truncated to the millisecond, any offset form and separator (date-time-format.ts).
// Date.parse, which the routes used before, reads '.0003000000' as 3 ms and refuses `+01`.
t.test('a date-time is the instant it names, to the millisecond', async (t) => {
  const app = await buildTestApp(t)
  const alice = await userWithToken(app)

  t.test('measurements: upload, list, duplicates and ranges', async (t) => {
    const sent = [
      ['2024-01-01T00:00:00.0003000000Z', '2024-01-01T00:00:00.000Z'],
      ['2024-01-01T00:00:01.0123456789Z', '2024-01-01T00:00:01.012Z'],
      ['2024-01-01T01:00:02.9999999999999999999999999+01', '2024-01-01T00:00:02.999Z'],
      ['2024-01-01\u202800:00:03.5z', '2024-01-01T00:00:03.500Z'],
      ['2023-12-31t19:30:04.00000000000000000001-0430', '2024-01-01T00:00:04.000Z'],
    ]
    const upload = (timestamps: string[]) =>
      alice.call('POST', '/v1/measurements', {
        samples: timestamps.map((timestamp, i) => ({ type: 'heart_rate', timestamp, value: 60 + i })),
      })
    t.same((await upload(sent.map(([s]) => s))).body, { accepted: 5, duplicates: 0 })
    const list = async (from: string, to: string) =>
      (await alice.call('GET', `/v1/measurements?type=heart_rate&from=${from}&to=${to}`)).body.data.map(
        (s: { timestamp: string }) => s.timestamp,
      )
    t.same(
      await list('2024-01-01T00:00:00Z', '2024-01-01T00:01:00Z'),
      sent.map(([, stored]) => stored),
      'stored truncated to the millisecond',
    )
    t.same(
      (await upload(sent.map(([, stored]) => stored))).body,
      { accepted: 0, duplicates: 5 },
      'the same instants again are duplicates',
    )
    // from 01.012 (inclusive) to 02.999 (exclusive): only the sample at 01.012.
    t.same(await list('2024-01-01T00:00:01.0129999999Z', '2024-01-01T00:00:02.9990000001Z'), [
      '2024-01-01T00:00:01.012Z',
    ])
    t.same(await list('2024-01-01T01:00:01.0123456789%2B01', '2024-01-01T00:00:01.0130000000001Z'), [
      '2024-01-01T00:00:01.012Z',
    ])
    const deleted = await alice.call(
      'DELETE',
      '/v1/measurements?type=heart_rate&from=2024-01-01T00:00:00.0009999999Z&to=2024-01-01T00:00:01.0123456789Z',
    )
    t.same(deleted.body, { deleted: 1 }, 'a range [00.000, 01.012) deletes the sample at 00.000 only')
    t.same(await list('2024-01-01T00:00:00Z', '2024-01-01T00:00:01.013Z'), ['2024-01-01T00:00:01.012Z'])
  })

  t.test('check-ins: create, edit, list', async (t) => {
    const created = await alice.call('POST', '/v1/checkins', { mood: 3, timestamp: '2024-01-01T00:00:00.0123456789Z' })
    t.equal(created.status, 201)
    t.equal(created.body.timestamp, '2024-01-01T00:00:00.012Z')
    const edited = await alice.call('PATCH', `/v1/checkins/${created.body.id}`, {
      timestamp: '2024-01-01T02:00:00.0003000000+01:00',
    })
    t.equal(edited.body.timestamp, '2024-01-01T01:00:00.000Z')
    const offset = await alice.call('POST', '/v1/checkins', { mood: 4, timestamp: '2024-01-01T03:00:00+01' })
    t.equal(offset.status, 201, 'an offset without minutes')
    t.equal(offset.body.timestamp, '2024-01-01T02:00:00.000Z')
    const listed = await alice.call(
      'GET',
      '/v1/checkins?from=2024-01-01T01:00:00.0009999999Z&to=2024-01-01T02:00:00.0009999999Z',
    )
    t.same(
      listed.body.data.map((c: { id: string }) => c.id),
      [created.body.id],
      '[01:00:00.000, 02:00:00.000): the edited one, not the one at 02:00:00.000',
    )
  })

  t.test('activities: start, end, edit', async (t) => {
    const started = await alice.call('POST', '/v1/activities', {
      kind: 'walk',
      started_at: '2024-01-01T00:00:00.0123456789Z',
      ended_at: '2024-01-01 00:30:00.0003000000Z',
    })
    t.equal(started.status, 201)
    t.match(started.body, { started_at: '2024-01-01T00:00:00.012Z', ended_at: '2024-01-01T00:30:00.000Z' })
    const running = await alice.call('POST', '/v1/activities', {
      kind: 'run',
      started_at: '2024-01-02T00:00:00.9999999999Z',
    })
    const ended = await alice.call('POST', `/v1/activities/${running.body.id}/end`, {
      ended_at: '2024-01-02T01:00:00.0003000000+0100',
    })
    t.match(
      ended,
      { status: 400, body: { details: [{ field: 'ended_at', problem: 'must not be before started_at' }] } },
      'an end at 00:00:00.000 is before the start at 00:00:00.999',
    )
    const later = await alice.call('POST', `/v1/activities/${running.body.id}/end`, {
      ended_at: '2024-01-02T01:00:01.0003000000+0100',
    })
    t.equal(later.body.ended_at, '2024-01-02T00:00:01.000Z')
    const edited = await alice.call('PATCH', `/v1/activities/${started.body.id}`, {
      started_at: '2024-01-01T00:10:00.0099999999Z',
    })
    t.equal(edited.body.started_at, '2024-01-01T00:10:00.009Z')
  })

  t.test('registration: the acceptance times', async (t) => {
    const client = await createClient(app)
    const email = uniqueEmail('fraction')
    const res = await app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      headers: { 'x-auth-token': client.x_auth_token },
      payload: {
        email,
        password: PASSWORD,
        first_name: 'Sponge',
        last_name: 'Bob',
        toc_accepted_at: '2024-07-01T12:34:56.0123456789Z',
        privacy_policy_accepted_at: '2024-07-01T14:34:56.0003000000+02',
      },
    })
    t.equal(res.statusCode, 200)
    const [row] = await app.db.select().from(users).where(eq(users.email, email))
    t.same(
      [row.tocAcceptedAt.toISOString(), row.privacyPolicyAcceptedAt.toISOString()],
      ['2024-07-01T12:34:56.012Z', '2024-07-01T12:34:56.000Z'],
    )
  })

  t.test('the window and the leap second hold in every offset form', async (t) => {
    const refused = async (timestamp: string, problem: RegExp) => {
      const res = await alice.call('POST', '/v1/checkins', { mood: 3, timestamp })
      t.equal(res.status, 400, timestamp)
      const problems = res.body.details.map((d: { field: string; problem: string }) => `${d.field}: ${d.problem}`)
      t.ok(
        problems.some((p: string) => p.startsWith('timestamp: ') && problem.test(p.slice(11))),
        problems.join('; '),
      )
    }
    await refused('1800-01-01T00:00:00+0000', /^must be between 1900-01-01T00:00:00Z and/)
    await refused('2199-01-01T00:00:00+01', /^must be between 1900-01-01T00:00:00Z and 5 min from now/)
    await refused('2016-12-31T23:59:60Z', /leap second/)
    await refused('2016-12-31T23:59:60+0000', /leap second/)
    await refused('2017-01-01T00:59:60.0003000000+01', /leap second/)
    await refused('2016-12-31T23:59:60.99999999999z', /leap second/)
    await refused('2016-12-31T12:59:60Z', /leap second/) // and the format's error: not at 23:59 UTC
    // ajv-formats' leap-second rule lets these through (23:59 UTC once the offset is applied); they have no instant.
    await refused('2016-12-31T24:59:00+01', /^is not a real instant \(hours are 00-23 and minutes 00-59\)$/)
    await refused('2016-12-31T23:60:00.5+00:01', /^is not a real instant \(hours are 00-23 and minutes 00-59\)$/)
    await refused('2016-12-31T24:00:00+00:01', /^is not a real instant \(hours are 00-23/) // Date.parse: a midnight
    const sample = await alice.call('POST', '/v1/measurements', {
      samples: [{ type: 'heart_rate', timestamp: '2199-01-01T00:00:00+0100', value: 60 }],
    })
    t.match(sample, {
      status: 400,
      body: { details: [{ field: 'samples[0].timestamp', problem: /^must be between/ }] },
    })
  })
})
