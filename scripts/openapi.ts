import { buildApp } from '../app.ts'
import { openDatabase } from '../db/client.ts'
import { loadConfig } from '../plugins/config.ts'

/** The spec the server serves at /docs/json, built on a throw-away in-memory database. */
export async function servedSpec(): Promise<Record<string, unknown>> {
  const database = await openDatabase({ dataDir: 'memory://' })
  const config = loadConfig({
    NODE_ENV: 'test',
    JWT_SECRET: 'x'.repeat(32),
    LOG_LEVEL: 'silent',
    JOBS_ENABLED: 'false',
  })
  const app = await buildApp({ config, database, logger: false })
  try {
    await app.ready()
    const res = await app.inject({ method: 'GET', url: '/docs/json' })
    return res.json()
  } finally {
    await app.close()
    await database.close()
  }
}
