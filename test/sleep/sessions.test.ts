import t from 'tap'
import { type StageInterval, deriveSessions, sessionId, sleepDays } from '../../routes/sleep/sessions.ts'

// The pure derivation on hand-built nights: each night is a list of [stage, minutes] stretches laid end to
// end from a start instant; `null` as stage is a stretch with nothing recorded.

const MIN = 60_000
const AWAKE = 0
const LIGHT = 1
const DEEP = 2
const REM = 3

function night(start: string, stretches: Array<[number | null, number]>, deviceId = 'watch'): StageInterval[] {
  let at = Date.parse(start)
  const out: StageInterval[] = []
  for (const [stage, minutes] of stretches) {
    if (stage !== null) out.push({ deviceId, stage, start: at, end: at + minutes * MIN })
    at += minutes * MIN
  }
  return out
}

const minutes = (ms: number) => ms / MIN

t.test('one night: stages, in-bed awake before and after, latency and efficiency', async (t) => {
  const ivs = night('2026-03-10T22:40:00Z', [
    [AWAKE, 20],
    [LIGHT, 60],
    [DEEP, 60],
    [REM, 30],
    [AWAKE, 10],
    [LIGHT, 120],
    [AWAKE, 15],
  ])
  const [s, ...rest] = deriveSessions(ivs, 'UTC', 'user-1')
  t.same(rest, [])
  t.match(s, {
    date: '2026-03-11',
    kind: 'main',
    deviceId: 'watch',
    start: Date.parse('2026-03-10T22:40:00Z'),
    onset: Date.parse('2026-03-10T23:00:00Z'),
    wake: Date.parse('2026-03-11T03:40:00Z'),
    end: Date.parse('2026-03-11T03:55:00Z'),
    stages: { light: 180 * MIN, deep: 60 * MIN, rem: 30 * MIN, awake: 45 * MIN },
    asleep: 270 * MIN,
    unrecorded: 0,
  })
  t.equal(s.id, sessionId('user-1', 'watch', s.onset))
  t.not(s.id, deriveSessions(ivs, 'UTC', 'user-2')[0].id, 'ids differ between users')
  t.match(s.id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
})

t.test('gaps: less than 120 minutes apart is one session, 120 or more splits it', async (t) => {
  const joined = deriveSessions(
    night('2026-03-10T23:00:00Z', [
      [LIGHT, 60],
      [null, 119],
      [DEEP, 60],
    ]),
    'UTC',
    'u',
  )
  t.equal(joined.length, 1)
  t.same([minutes(joined[0].asleep), minutes(joined[0].unrecorded)], [120, 119])
  const awakeBetween = deriveSessions(
    night('2026-03-10T23:00:00Z', [
      [LIGHT, 60],
      [AWAKE, 100],
      [DEEP, 60],
    ]),
    'UTC',
    'u',
  )
  t.same(
    awakeBetween.map((s) => [minutes(s.asleep), minutes(s.stages.awake)]),
    [[120, 100]],
    'awake in the middle',
  )
  const split = deriveSessions(
    night('2026-03-10T23:00:00Z', [
      [LIGHT, 60],
      [null, 120],
      [DEEP, 60],
    ]),
    'UTC',
    'u',
  )
  t.same(
    split.map((s) => [s.kind, minutes(s.asleep)]),
    [
      ['main', 60],
      ['nap', 60],
    ],
  )
})

t.test('awake time before sleep counts at most 60 minutes, and only without a break', async (t) => {
  const long = deriveSessions(
    night('2026-03-10T21:00:00Z', [
      [AWAKE, 90],
      [LIGHT, 60],
    ]),
    'UTC',
    'u',
  )[0]
  t.same([minutes(long.onset - long.start), minutes(long.stages.awake)], [60, 60])
  const broken = deriveSessions(
    night('2026-03-10T21:00:00Z', [
      [AWAKE, 30],
      [null, 5],
      [LIGHT, 60],
    ]),
    'UTC',
    'u',
  )[0]
  t.equal(broken.start, broken.onset, 'an unrecorded stretch ends the in-bed awake time')
})

t.test('sessions with less than 15 minutes asleep are not sleep', async (t) => {
  t.same(deriveSessions(night('2026-03-10T14:00:00Z', [[LIGHT, 14]]), 'UTC', 'u'), [])
  t.equal(deriveSessions(night('2026-03-10T14:00:00Z', [[LIGHT, 15]]), 'UTC', 'u').length, 1)
  t.same(deriveSessions(night('2026-03-10T14:00:00Z', [[AWAKE, 300]]), 'UTC', 'u'), [], 'awake only')
})

t.test("naps: separate sessions; the day's longest is main", async (t) => {
  const ivs = [
    ...night('2026-03-10T23:00:00Z', [[LIGHT, 420]]),
    ...night('2026-03-11T13:00:00Z', [
      [AWAKE, 5],
      [LIGHT, 40],
    ]),
  ]
  const sessions = deriveSessions(ivs, 'UTC', 'u')
  t.same(
    sessions.map((s) => [s.date, s.kind, minutes(s.asleep)]),
    [
      ['2026-03-11', 'main', 420],
      ['2026-03-11', 'nap', 40],
    ],
  )
  const [day] = sleepDays(sessions, ['2026-03-11'])
  t.same([minutes(day.total as number), day.main?.id, day.sessions], [460, sessions[0].id, 2])
  t.same(sleepDays(sessions, ['2026-03-12']), [{ date: '2026-03-12', total: null, main: null, sessions: 0 }])
})

t.test('two watches on one night count once; the one with more sleep is kept', async (t) => {
  const ivs = [
    ...night('2026-03-10T23:00:00Z', [[LIGHT, 400]], 'left'),
    ...night('2026-03-10T23:10:00Z', [[DEEP, 420]], 'right'),
    // The left watch alone in the afternoon: not overlapping, so it is a nap.
    ...night('2026-03-11T14:00:00Z', [[LIGHT, 30]], 'left'),
  ]
  t.same(
    deriveSessions(ivs, 'UTC', 'u').map((s) => [s.deviceId, s.kind, minutes(s.asleep)]),
    [
      ['right', 'main', 420],
      ['left', 'nap', 30],
    ],
  )
})

t.test('a night across a DST change lasts as long as it really did', async (t) => {
  // Berlin falls back at 03:00 CEST on 2026-10-25: 22:00 local to 07:00 local is 10 hours.
  const fall = deriveSessions(night('2026-10-24T20:00:00Z', [[LIGHT, 600]]), 'Europe/Berlin', 'u')
  t.same(
    fall.map((s) => [s.date, minutes(s.asleep)]),
    [['2026-10-25', 600]],
  )
  // It springs forward at 02:00 CET on 2026-03-29: 22:00 local to 07:00 local is 8 hours.
  const spring = deriveSessions(night('2026-03-28T21:00:00Z', [[DEEP, 480]]), 'Europe/Berlin', 'u')
  t.same(
    spring.map((s) => [s.date, minutes(s.asleep)]),
    [['2026-03-29', 480]],
  )
})

t.test('a night split by midnight belongs to the day it ends on, in the user’s zone', async (t) => {
  const ivs = night('2026-03-10T23:30:00Z', [[LIGHT, 60]])
  t.equal(deriveSessions(ivs, 'UTC', 'u')[0].date, '2026-03-11')
  // In New York (UTC−4 after 2026-03-08) the same hour is 19:30–20:30 on the 10th.
  t.equal(deriveSessions(ivs, 'America/New_York', 'u')[0].date, '2026-03-10')
  // Ending one minute before midnight: that day.
  t.equal(deriveSessions(night('2026-03-10T21:00:00Z', [[LIGHT, 179]]), 'UTC', 'u')[0].date, '2026-03-10')
})

t.test('awake after waking ends at the last awake sample when nothing follows it', async (t) => {
  // Light sleep, then awake samples at 00:00 and 00:05; the 00:05 one holds until the next sample of the
  // device (60 minutes at most), but nothing touches it: the session ends at 00:05.
  const ivs = night('2026-03-10T23:00:00Z', [
    [LIGHT, 60],
    [AWAKE, 65],
  ])
  ivs[1].lastSample = Date.parse('2026-03-11T00:05:00Z')
  const [s] = deriveSessions(ivs, 'UTC', 'u')
  t.same([s.end, minutes(s.stages.awake)], [Date.parse('2026-03-11T00:05:00Z'), 5])
  // Followed without a break by another stretch, it counts in full (within the 60-minute edge).
  const more = night('2026-03-10T23:00:00Z', [
    [LIGHT, 60],
    [AWAKE, 30],
    [AWAKE, 10],
  ])
  more[1].lastSample = more[1].start
  t.equal(minutes(deriveSessions(more, 'UTC', 'u')[0].stages.awake), 40)
})
