import t from 'tap'
import { createInsightEngine } from '../../routes/insight/engine.ts'
import { addDays, todayIn } from '../../routes/journal/zone.ts'
import { createSleepRepository } from '../../routes/sleep/repository.ts'
import { buildTestApp } from '../helpers/app.ts'
import { clearOfBoundary } from '../helpers/clock.ts'
import { type UserWithToken, userWithToken } from '../helpers/fixtures.ts'
import { type Sample, ingest } from '../helpers/measurement.ts'

// Tokyo has no daylight saving time: local clock times map to one fixed UTC offset.
const ZONE = 'Asia/Tokyo'
const local = (day: string, time: string) => Date.parse(`${day}T${time}:00+09:00`)
const MINUTE = 60_000

type Insight = { kind: string; period_start: string; period_end: string; title: string; data: Record<string, number> }

async function insightsOf(u: UserWithToken, kind: string): Promise<Insight[]> {
  const res = await u.call('GET', `/v1/insights?kind=${kind}`)
  if (res.status !== 200) throw new Error(`insights: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body.data
}

/** Ten minutes of heart rate at `bpm` from 03:00 local: that day's resting heart rate is `bpm`. */
const restingDay = (day: string, bpm: number): Sample[] =>
  Array.from({ length: 10 }, (_, i) => ({
    type: 'heart_rate',
    timestamp: new Date(local(day, '03:00') + i * MINUTE).toISOString(),
    value: bpm,
  }))

/**
 * A night ending on `day`: from 22:30 local the evening before, one sleep_stage sample every 30 minutes
 * with the given stages, then an awake sample that ends the last stage.
 */
const night = (day: string, stages: number[]): Sample[] =>
  [...stages, 0].map((value, i) => ({
    type: 'sleep_stage',
    timestamp: new Date(local(addDays(day, -1), '22:30') + i * 30 * MINUTE).toISOString(),
    value,
  }))
// 7.5 hours asleep (15 half hours of light/deep/REM) with half an hour awake in the middle.
const GOOD = [1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 2, 3, 2, 1, 1]
// 6.5 hours asleep.
const SHORT = [1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3, 2, 1]

t.test('insights from measurements', async (t) => {
  const app = await buildTestApp(t)
  const engine = createInsightEngine(app.db)
  // `today` is fixed here for all the subtests (a few seconds), while the rules take Tokyo's day when they run:
  // no Tokyo midnight may pass in between, or "yesterday" moves under the test.
  await clearOfBoundary((at) => todayIn(ZONE, new Date(at)), 60_000)
  const today = todayIn(ZONE)
  const yesterday = addDays(today, -1)

  t.test('resting heart rate above its 14-day baseline', async (t) => {
    async function userWith(baseline: number[], last: number | null) {
      const u = await userWithToken(app, { timeZone: ZONE })
      const samples = baseline.flatMap((bpm, i) => restingDay(addDays(yesterday, -1 - i), bpm))
      if (last !== null) samples.push(...restingDay(yesterday, last))
      if (samples.length > 0) await ingest(app, u.headers, samples)
      return u
    }
    const ten = (bpm: number) => Array<number>(10).fill(bpm)

    const elevated = await userWith(ten(55), 62)
    // A low day just outside the 14 days before yesterday does not pull the baseline down.
    await ingest(app, elevated.headers, restingDay(addDays(yesterday, -15), 40))
    const list = await insightsOf(elevated, 'resting_hr_elevated')
    t.same(
      list.map((i) => [i.period_start, i.period_end, i.data]),
      [
        [
          yesterday,
          yesterday,
          { resting_heart_rate: 62, baseline: 55, rise: 7, rise_percent: 12.73, baseline_days: 10 },
        ],
      ],
    )
    t.match(list[0], { title: 'Your resting heart rate was up yesterday' })
    t.equal(await engine.generate(elevated.user.id), 0, 're-running adds nothing')
    t.equal((await insightsOf(elevated, 'resting_hr_elevated')).length, 1)

    const silent = {
      'rise of 5 bpm but only 6.25 %': await userWith(ten(80), 85),
      'rise of 8 % but only 4 bpm': await userWith(ten(50), 54),
      'only 6 baseline days': await userWith(ten(55).slice(0, 6), 70),
      'no value yesterday': await userWith(ten(55), null),
      'lower than usual': await userWith(ten(60), 50),
    }
    for (const [why, u] of Object.entries(silent)) t.same(await insightsOf(u, 'resting_hr_elevated'), [], why)
    // Other users' samples never count: 'no value yesterday' stays silent although others have one.
    t.same(await insightsOf(await userWith([], null), 'resting_hr_elevated'), [], 'no data, no insight')
  })

  t.test('asleep minutes per night', async (t) => {
    const u = await userWithToken(app, { timeZone: ZONE })
    const repo = createSleepRepository(app.db)
    const asleepMinutes = async (from: string, to: string) =>
      (await repo.daily(u.user.id, from, to, ZONE))
        .filter((d) => d.total !== null)
        .map((d) => ({ date: d.date, asleep_minutes: (d.total as number) / MINUTE }))
    const d1 = addDays(today, -3)
    const d2 = addDays(today, -2)
    await ingest(app, u.headers, night(d1, GOOD))
    // Two watches recording the same night count once.
    await ingest(app, u.headers, night(d2, SHORT), 'left')
    await ingest(app, u.headers, night(d2, GOOD), 'right')
    // A silent watch: deep sleep at 23:00, nothing until an awake sample at 07:00 counts at most an hour.
    await ingest(app, u.headers, [
      { type: 'sleep_stage', timestamp: new Date(local(d2, '23:00')).toISOString(), value: 2 },
      { type: 'sleep_stage', timestamp: new Date(local(yesterday, '07:00')).toISOString(), value: 0 },
    ])
    // A last sample with no end yet counts nothing.
    await ingest(app, u.headers, [
      { type: 'sleep_stage', timestamp: new Date(local(today, '00:10')).toISOString(), value: 1 },
    ])
    t.same(await asleepMinutes(d1, today), [
      { date: d1, asleep_minutes: 450 },
      { date: d2, asleep_minutes: 450 },
      { date: yesterday, asleep_minutes: 60 },
    ])
    t.same(await asleepMinutes(d2, d2), [{ date: d2, asleep_minutes: 450 }], 'one day')
  })

  t.test("sleep-goal streak: consecutive nights reaching the user's goal", async (t) => {
    async function sleeper(goalS: number, nights: number[][]) {
      const u = await userWithToken(app, { timeZone: ZONE })
      t.equal((await u.call('PATCH', '/v1/users/me', { sleep_time_goal: goalS })).status, 200)
      // nights[0] ends yesterday, nights[1] the day before, …
      await ingest(
        app,
        u.headers,
        nights.flatMap((stages, i) => night(addDays(yesterday, -i), stages)),
      )
      return u
    }
    const SEVEN_HOURS = 7 * 3600

    const good = await sleeper(SEVEN_HOURS, [GOOD, GOOD, GOOD])
    const list = await insightsOf(good, 'sleep_goal_streak')
    t.same(
      list.map((i) => [i.period_start, i.period_end, i.data]),
      [[addDays(yesterday, -2), yesterday, { streak_days: 3 }]],
    )
    t.match(list[0], { title: '3 nights of enough sleep in a row', body: /goal of 7 hours 3 nights in a row/ })
    t.equal(await engine.generate(good.user.id), 0, 're-running adds nothing')
    t.equal((await insightsOf(good, 'sleep_goal_streak')).length, 1)

    t.same(
      await insightsOf(await sleeper(SEVEN_HOURS, [GOOD, SHORT, GOOD, GOOD]), 'sleep_goal_streak'),
      [],
      'a short night breaks the streak',
    )
    t.same(
      await insightsOf(await sleeper(8 * 3600, [GOOD, GOOD, GOOD]), 'sleep_goal_streak'),
      [],
      '7.5 hours do not reach a goal of 8',
    )
    t.same(
      await insightsOf(await sleeper(SEVEN_HOURS, [[], GOOD, GOOD, GOOD]), 'sleep_goal_streak'),
      [],
      'a streak that ended two nights ago is over',
    )
  })
})
