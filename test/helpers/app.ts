import type { Test } from 'tap'
import { buildApp } from '../../app.ts'
import type { Database } from '../../db/client.ts'
import { type Config, loadConfig } from '../../plugins/config.ts'
import { freshDatabase } from './database.ts'

export const TEST_ENV = {
  NODE_ENV: 'test',
  JWT_SECRET: 'test-secret-test-secret-test-secret-0123456789',
  BCRYPT_COST: '4',
  LOG_LEVEL: 'silent',
  JOBS_ENABLED: 'false',
  RATE_LIMIT_ENABLED: 'false',
  // PGlite runs queries on the event loop; a loaded CI machine must not turn them into 503s.
  MAX_EVENT_LOOP_DELAY_MS: '0',
}

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ ...TEST_ENV, DATABASE_URL: process.env.DATABASE_URL, ...env })
}

export interface TestAppOptions {
  env?: Record<string, string>
  database?: Database
  /** The clock of TOTP time steps (ms); default Date.now. */
  clock?: () => number
}

/** An app on a fresh database (one per call unless given), closed when the test ends. */
export async function buildTestApp(t: Test, options: TestAppOptions = {}) {
  const database = options.database ?? (await freshDatabase())
  const app = await buildApp({ config: testConfig(options.env), database, logger: false, clock: options.clock })
  t.teardown(async () => {
    await app.close()
    if (!options.database) await database.close()
  })
  await app.ready()
  return app
}

export type TestApp = Awaited<ReturnType<typeof buildTestApp>>
