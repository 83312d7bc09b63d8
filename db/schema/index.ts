export * from './auth.ts'
export * from './firmware.ts'
export * from './system.ts'
export * from './user.ts'
