-- What each existing insight was computed from, as the rules of routes/insight/rules.ts read it; an unknown
-- kind reads as computed from anything of its user's in its period.
UPDATE "insights" SET
  "sources" = CASE "kind"
    WHEN 'mood_trend' THEN ARRAY['checkin', 'day_feedback']
    WHEN 'journaling_streak' THEN ARRAY['checkin', 'day_feedback']
    WHEN 'activity_streak' THEN ARRAY['activity']
    WHEN 'resting_hr_elevated' THEN ARRAY['measurement:heart_rate']
    WHEN 'sleep_goal_streak' THEN ARRAY['measurement:sleep_stage']
    ELSE ARRAY['*']
  END,
  "source_from" = CASE "kind"
    WHEN 'mood_trend' THEN "period_start" - 7
    WHEN 'resting_hr_elevated' THEN "period_start" - 14
    WHEN 'sleep_goal_streak' THEN "period_start" - 1
    ELSE "period_start"
  END,
  "source_to" = "period_end"
WHERE "source_from" IS NULL;--> statement-breakpoint
ALTER TABLE "insights" ALTER COLUMN "source_from" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "insights" ALTER COLUMN "source_to" SET NOT NULL;
