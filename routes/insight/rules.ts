import type { Db } from '../../db/client.ts'
import { createCheckinRepository } from '../checkin/repository.ts'
import { createDayFeedbackRepository } from '../day-feedback/repository.ts'
import { addDays } from '../journal/zone.ts'
import { createMeasurementRepository } from '../measurement/repository.ts'
import { createJournalSessionRepository } from '../session-wrapper/repository.ts'
import { createSleepRepository } from '../sleep/repository.ts'
import { journalDays } from '../statistics/day-mood.ts'
import { createUserRepository } from '../user/repository.ts'

/** What a rule sees: the user, their time zone and today's calendar day in it. */
export interface RuleContext {
  db: Db
  userId: string
  timeZone: string
  /** Today in the user's zone, `YYYY-MM-DD`. */
  today: string
}

/** One insight a rule wants to exist. (user, kind, period) is its identity: the same draft twice is one insight. */
export interface InsightDraft {
  kind: string
  periodStart: string
  periodEnd: string
  title: string
  body: string
  /** The numbers the insight is based on. */
  data: Record<string, number | null>
  /** The kinds of data it was computed from (see plugins/data-changes.ts) … */
  sources: string[]
  /** … and the local days read: a change there withdraws it until the rules run again. */
  sourceFrom: string
  sourceTo: string
}

/**
 * A rule reads the user's data through the owning domains' repositories and answers the insights it
 * supports, or none. Rules must be deterministic for a period: generation is repeated freely.
 * Measurement-based rules read the measurement repository's aggregates, never its tables.
 */
export interface InsightRule {
  kind: string
  description: string
  evaluate(ctx: RuleContext): Promise<InsightDraft[]>
}

/** Streak lengths worth a word; one insight per streak and milestone. */
export const STREAK_MILESTONES = [3, 7, 14, 30, 60, 100, 180, 365] as const
const STREAK_LOOKBACK_DAYS = 400

/**
 * The streak of consecutive days (among `days`) that is still alive: it ends today, or yesterday
 * when today has no entry yet. Null when there is none.
 */
export function currentStreak(days: Iterable<string>, today: string): { start: string; length: number } | null {
  const set = new Set(days)
  let end = today
  if (!set.has(end)) end = addDays(today, -1)
  if (!set.has(end)) return null
  let start = end
  while (set.has(addDays(start, -1))) start = addDays(start, -1)
  const length = (Date.parse(`${end}T00:00:00Z`) - Date.parse(`${start}T00:00:00Z`)) / 86_400_000 + 1
  return { start, length }
}

/** The highest milestone the current streak has reached, as a draft whose period runs from the streak's first day. */
function streakDraft(
  kind: string,
  days: Iterable<string>,
  today: string,
  source: { sources: string[]; leadDays?: number },
  text: (milestone: number) => { title: string; body: string },
): InsightDraft[] {
  const streak = currentStreak(days, today)
  if (!streak) return []
  const milestone = [...STREAK_MILESTONES].reverse().find((m) => m <= streak.length)
  if (!milestone) return []
  return [
    {
      kind,
      periodStart: streak.start,
      periodEnd: addDays(streak.start, milestone - 1),
      ...text(milestone),
      data: { streak_days: milestone },
      sources: source.sources,
      sourceFrom: addDays(streak.start, -(source.leadDays ?? 0)),
      sourceTo: addDays(streak.start, milestone - 1),
    },
  ]
}

/** Monday of the ISO week a day belongs to. */
export function weekStart(day: string): string {
  const weekday = (new Date(`${day}T00:00:00Z`).getUTCDay() + 6) % 7
  return addDays(day, -weekday)
}

/** Mood of each day that has one, as statistics defines it (see `journalDays`). */
export async function dailyMoods(ctx: RuleContext, from: string, to: string): Promise<Map<string, number>> {
  const days = await journalDays(ctx.db, ctx.userId, from, to, ctx.timeZone)
  const moods = new Map<string, number>()
  for (const [date, day] of days) if (day.mood !== null) moods.set(date, day.mood)
  return moods
}

const round2 = (n: number) => Math.round(n * 100) / 100
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length

export const MOOD_TREND_MIN_DAYS = 3
export const MOOD_TREND_MIN_CHANGE = 0.5

/** Last complete week's mood against the week before: a change of half a point or more on the 1..5 scale. */
export const moodTrendRule: InsightRule = {
  kind: 'mood_trend',
  description: `Average daily mood of the last complete week (Monday to Sunday) against the week before; said when it moved by at least ${MOOD_TREND_MIN_CHANGE} on the 1..5 scale and both weeks have mood on at least ${MOOD_TREND_MIN_DAYS} days.`,
  async evaluate(ctx) {
    const week = addDays(weekStart(ctx.today), -7)
    const previous = addDays(week, -7)
    const moods = await dailyMoods(ctx, previous, addDays(week, 6))
    const inWeek = (start: string) => [...moods].filter(([d]) => d >= start && d <= addDays(start, 6)).map(([, m]) => m)
    const current = inWeek(week)
    const before = inWeek(previous)
    if (current.length < MOOD_TREND_MIN_DAYS || before.length < MOOD_TREND_MIN_DAYS) return []
    const change = round2(mean(current) - mean(before))
    if (Math.abs(change) < MOOD_TREND_MIN_CHANGE) return []
    const up = change > 0
    return [
      {
        kind: 'mood_trend',
        periodStart: week,
        periodEnd: addDays(week, 6),
        title: up ? 'Your mood lifted last week' : 'Your mood dipped last week',
        body: `Your average mood was ${round2(mean(current))} out of 5 in the week of ${week}, ${Math.abs(change)} ${up ? 'higher' : 'lower'} than the week before (${round2(mean(before))}).`,
        data: {
          mood_avg: round2(mean(current)),
          previous_mood_avg: round2(mean(before)),
          change,
          days: current.length,
          previous_days: before.length,
        },
        sources: ['checkin', 'day_feedback'],
        sourceFrom: previous,
        sourceTo: addDays(week, 6),
      },
    ]
  },
}

/** Consecutive days with a check-in or a day feedback. */
export const journalingStreakRule: InsightRule = {
  kind: 'journaling_streak',
  description: `Consecutive days with at least one check-in or day feedback, said at ${STREAK_MILESTONES.join(', ')} days.`,
  async evaluate(ctx) {
    const from = addDays(ctx.today, -STREAK_LOOKBACK_DAYS)
    const [checkins, feedback] = await Promise.all([
      createCheckinRepository(ctx.db).dailyMood(ctx.userId, from, ctx.today, ctx.timeZone),
      createDayFeedbackRepository(ctx.db).moods(ctx.userId, from, ctx.today),
    ])
    const days = [...checkins.map((c) => c.date), ...feedback.map((f) => f.date)]
    return streakDraft('journaling_streak', days, ctx.today, { sources: ['checkin', 'day_feedback'] }, (n) => ({
      title: `${n} days of journaling in a row`,
      body: `You have checked in or written about your day ${n} days in a row. Keeping the habit makes the trends here more telling.`,
    }))
  },
}

/** Consecutive days on which an activity started. */
export const activityStreakRule: InsightRule = {
  kind: 'activity_streak',
  description: `Consecutive days with at least one activity, said at ${STREAK_MILESTONES.join(', ')} days.`,
  async evaluate(ctx) {
    const rows = await createJournalSessionRepository(ctx.db, 'activity').daysWithSessions(
      ctx.userId,
      addDays(ctx.today, -STREAK_LOOKBACK_DAYS),
      ctx.today,
      ctx.timeZone,
    )
    return streakDraft(
      'activity_streak',
      rows.map((r) => r.date),
      ctx.today,
      { sources: ['activity'] },
      (n) => ({
        title: `Active ${n} days in a row`,
        body: `You have recorded an activity on each of the last ${n} days.`,
      }),
    )
  },
}

export const RESTING_HR_BASELINE_DAYS = 14
export const RESTING_HR_MIN_BASELINE_DAYS = 7
export const RESTING_HR_MIN_RISE_BPM = 5
export const RESTING_HR_MIN_RISE_RATIO = 0.07

/**
 * Yesterday (the last complete day) against the resting heart rate of the 14 days before it. A rise of
 * a few beats is noise; one of both 5 bpm and 7 % over a two-week baseline is a common early sign of
 * illness, stress, alcohol or too little recovery, worth a word — never a diagnosis.
 */
export const restingHeartRateRule: InsightRule = {
  kind: 'resting_hr_elevated',
  description: `Yesterday's resting heart rate against the mean of the ${RESTING_HR_BASELINE_DAYS} days before it (at least ${RESTING_HR_MIN_BASELINE_DAYS} of them with a value); said when it is higher by at least ${RESTING_HR_MIN_RISE_BPM} bpm and at least ${RESTING_HR_MIN_RISE_RATIO * 100} %.`,
  async evaluate(ctx) {
    const day = addDays(ctx.today, -1)
    const rows = await createMeasurementRepository(ctx.db).daily(
      ctx.userId,
      addDays(day, -RESTING_HR_BASELINE_DAYS),
      day,
      ctx.timeZone,
    )
    const value = rows.find((r) => r.date === day)?.resting_heart_rate ?? null
    const baseline = rows
      .filter((r) => r.date < day && r.resting_heart_rate !== null)
      .map((r) => r.resting_heart_rate as number)
    if (value === null || baseline.length < RESTING_HR_MIN_BASELINE_DAYS) return []
    const base = mean(baseline)
    const rise = value - base
    if (rise < RESTING_HR_MIN_RISE_BPM || rise < RESTING_HR_MIN_RISE_RATIO * base) return []
    return [
      {
        kind: 'resting_hr_elevated',
        periodStart: day,
        periodEnd: day,
        title: 'Your resting heart rate was up yesterday',
        body: `Your resting heart rate on ${day} was ${round2(value)} bpm, ${round2(rise)} bpm above your ${baseline.length}-day average of ${round2(base)} bpm. Extra rest, fluids and an early night can help; if it stays up or you feel unwell, talk to a doctor.`,
        data: {
          resting_heart_rate: round2(value),
          baseline: round2(base),
          rise: round2(rise),
          rise_percent: round2((100 * rise) / base),
          baseline_days: baseline.length,
        },
        // Resting heart rate is derived from the heart_rate samples of each day.
        sources: ['measurement:heart_rate'],
        sourceFrom: addDays(day, -RESTING_HR_BASELINE_DAYS),
        sourceTo: day,
      },
    ]
  },
}

const SLEEP_FIRST_LOOKBACK_DAYS = 31

/** Consecutive nights whose time asleep reached the user's sleep_time_goal. */
export const sleepGoalStreakRule: InsightRule = {
  kind: 'sleep_goal_streak',
  description: `Consecutive days whose sleep (total_sleep of GET /v1/sleep/daily: every session dated on the day, naps included) reached the user's sleep_time_goal, said at ${STREAK_MILESTONES.join(', ')} nights. Sessions are those of GET /v1/sleep: one definition.`,
  async evaluate(ctx) {
    const user = await createUserRepository(ctx.db).findById(ctx.userId)
    if (!user) return []
    const goalMs = user.sleepTimeGoal * 1000
    const sleep = createSleepRepository(ctx.db)
    // Sleep is derived from raw samples: a month first, the whole lookback only for a streak that long.
    let days: string[] = []
    for (const lookback of [SLEEP_FIRST_LOOKBACK_DAYS, STREAK_LOOKBACK_DAYS]) {
      const from = addDays(ctx.today, -lookback)
      const nights = await sleep.daily(ctx.userId, from, ctx.today, ctx.timeZone)
      days = nights.filter((n) => n.total !== null && n.total >= goalMs).map((n) => n.date)
      if (currentStreak(days, ctx.today)?.start !== from) break
    }
    // A night is dated by the day it ends on: its first samples are on the evening before.
    const source = { sources: ['measurement:sleep_stage'], leadDays: 1 }
    return streakDraft('sleep_goal_streak', days, ctx.today, source, (n) => ({
      title: `${n} nights of enough sleep in a row`,
      body: `You have slept at least your goal of ${round2(goalMs / 3_600_000)} hours ${n} nights in a row.`,
    }))
  },
}

export const DEFAULT_RULES: InsightRule[] = [
  moodTrendRule,
  journalingStreakRule,
  activityStreakRule,
  restingHeartRateRule,
  sleepGoalStreakRule,
]
