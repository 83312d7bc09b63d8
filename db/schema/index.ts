export * from './auth.ts'
export * from './measurement.ts'
export * from './system.ts'
export * from './user.ts'
