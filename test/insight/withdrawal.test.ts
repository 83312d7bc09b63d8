import t from 'tap'
import { addDays, todayIn } from '../../routes/journal/zone.ts'
import { buildTestApp } from '../helpers/app.ts'
import { clearOfBoundary } from '../helpers/clock.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { type Sample, ingest } from '../helpers/measurement.ts'

// Insights outlive nothing they were computed from (issue 15): editing or deleting that data withdraws
// them at once, for the owner and for viewers; the next run of the rules recomputes what is still true.

const ZONE = 'Asia/Tokyo'
const local = (day: string, time: string) => Date.parse(`${day}T${time}:00+09:00`)
const HOUR = 3_600_000

const restingDay = (day: string, bpm: number): Sample[] =>
  Array.from({ length: 10 }, (_, i) => ({
    type: 'heart_rate',
    timestamp: new Date(local(day, '03:00') + i * 60_000).toISOString(),
    value: bpm,
  }))

t.test('an insight is withdrawn when its data changes, and recomputed when still true', async (t) => {
  const app = await buildTestApp(t)
  // `today` is fixed here for all the subtests, while the rules take Tokyo's day when they run: no Tokyo
  // midnight may pass in between, or "yesterday" moves under the test.
  await clearOfBoundary((at) => todayIn(ZONE, new Date(at)), 60_000)
  const today = todayIn(ZONE)
  const yesterday = addDays(today, -1)
  const owner = await userWithToken(app, { timeZone: ZONE })
  const viewer = await userWithToken(app)
  const invite = await owner.call('POST', '/v1/sharing/invites', { email: viewer.user.email, scopes: ['insight'] })
  await viewer.call('POST', `/v1/shared/invites/${invite.body.id}/accept`)
  const viewed = async () =>
    (await viewer.call('GET', `/v1/shared/${owner.user.id}/insights`)).body.data.map((i: { id: string }) => i.id)

  const baseline = Array.from({ length: 10 }, (_, i) => restingDay(addDays(yesterday, -1 - i), 55)).flat()
  await ingest(app, owner.headers, [...baseline, ...restingDay(yesterday, 62)])
  const first = await owner.call('GET', '/v1/insights?kind=resting_hr_elevated')
  t.equal(first.body.data.length, 1)
  const insight = first.body.data[0]
  t.match(insight, { period_start: yesterday, data: { resting_heart_rate: 62, baseline: 55 } })
  await owner.call('PUT', `/v1/insights/${insight.id}/feedback`, { helpful: true })
  await owner.call('POST', `/v1/insights/${insight.id}/reflections`, { text: 'I had a cold' })
  t.same(await viewed(), [insight.id], 'the viewer sees it')

  t.test('deleting samples of another type or outside its window changes nothing', async (t) => {
    const from = new Date(local(yesterday, '00:00')).toISOString()
    const to = new Date(local(today, '00:00')).toISOString()
    const steps = await owner.call('DELETE', `/v1/measurements?type=steps&from=${from}&to=${to}`)
    t.equal(steps.status, 200)
    const old = addDays(yesterday, -40)
    await ingest(app, owner.headers, restingDay(old, 50))
    const outside = await owner.call(
      'DELETE',
      `/v1/measurements?type=heart_rate&from=${new Date(local(old, '00:00')).toISOString()}&to=${new Date(local(addDays(old, 1), '00:00')).toISOString()}`,
    )
    t.equal(outside.body.deleted, 10)
    t.same(await viewed(), [insight.id], 'still there')
  })

  t.test("deleting a baseline day's samples withdraws it at once; the rules recompute it in place", async (t) => {
    const day = addDays(yesterday, -3)
    const res = await owner.call(
      'DELETE',
      `/v1/measurements?type=heart_rate&from=${new Date(local(day, '00:00')).toISOString()}&to=${new Date(local(addDays(day, 1), '00:00')).toISOString()}`,
    )
    t.equal(res.body.deleted, 10)
    t.same(await viewed(), [], 'withdrawn for the viewer at once (a viewer does not run the rules)')
    const gone = await viewer.call('GET', `/v1/shared/${owner.user.id}/insights/${insight.id}`)
    t.equal(gone.status, 404)
    const again = await owner.call('GET', '/v1/insights?kind=resting_hr_elevated')
    t.equal(again.body.data.length, 1, "the owner's read runs the rules: still true with 9 baseline days")
    t.match(again.body.data[0], {
      id: insight.id,
      data: { baseline_days: 9, resting_heart_rate: 62 },
      feedback: { helpful: true },
    })
    const reflections = await owner.call('GET', `/v1/insights/${insight.id}/reflections`)
    t.match(reflections.body.data, [{ text: 'I had a cold' }], 'feedback and reflections are kept')
    t.same(await viewed(), [insight.id])
  })

  t.test('deleting the samples of its day withdraws it for good', async (t) => {
    const res = await owner.call(
      'DELETE',
      `/v1/measurements?from=${new Date(local(yesterday, '00:00')).toISOString()}&to=${new Date(local(today, '00:00')).toISOString()}`,
    )
    t.equal(res.body.deleted, 10, 'every type: measurement:*')
    t.same((await owner.call('GET', '/v1/insights?kind=resting_hr_elevated')).body.data, [])
    t.equal((await owner.call('GET', `/v1/insights/${insight.id}`)).status, 404)
    t.same(await viewed(), [])
  })
})

t.test('journal edits and deletions withdraw the insights computed from them', async (t) => {
  const app = await buildTestApp(t)
  const owner = await userWithToken(app)
  const other = await userWithToken(app)
  const ids: string[] = []
  for (let i = 0; i < 3; i++) {
    const res = await owner.call('POST', '/v1/checkins', {
      timestamp: new Date(Date.now() - (1 + i * 24) * HOUR).toISOString(),
      mood: 3,
    })
    ids.push(res.body.id)
  }
  const streak = async () => (await owner.call('GET', '/v1/insights?kind=journaling_streak')).body.data
  const [first] = await streak()
  t.match(first, { kind: 'journaling_streak', data: { streak_days: 3 } })

  t.test("another user's edits touch nothing of the owner's", async (t) => {
    const mine = await other.call('POST', '/v1/checkins', { timestamp: new Date().toISOString(), mood: 2 })
    await other.call('DELETE', `/v1/checkins/${mine.body.id}`)
    t.equal((await other.call('DELETE', `/v1/checkins/${ids[0]}`)).status, 404)
    t.same(
      (await owner.call('GET', `/v1/insights/${first.id}`)).status,
      200,
      'not withdrawn by a stranger, nor by a refused delete',
    )
  })

  t.test('an edit withdraws, the next read recomputes it', async (t) => {
    const edit = await owner.call('PATCH', `/v1/checkins/${ids[1]}`, { mood: 5 })
    t.equal(edit.status, 200)
    const [again] = await streak()
    t.equal(again.id, first.id, 'still a 3-day streak: back in place')
  })

  t.test('deleting a day of the streak withdraws it for good', async (t) => {
    t.equal((await owner.call('DELETE', `/v1/checkins/${ids[1]}`)).status, 200)
    t.equal((await owner.call('GET', `/v1/insights/${first.id}`)).status, 404)
    t.same(await streak(), [], 'the streak is broken: nothing to say')
  })
})
