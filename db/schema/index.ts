export * from './auth.ts'
export * from './system.ts'
export * from './telemetry.ts'
export * from './user.ts'
