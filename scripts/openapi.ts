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
    // A busy machine must not turn the spec into a 503 body (under-pressure is off, as in tests).
    MAX_EVENT_LOOP_DELAY_MS: '0',
  })
  const app = await buildApp({ config, database, logger: false })
  try {
    await app.ready()
    const res = await app.inject({ method: 'GET', url: '/docs/json' })
    if (res.statusCode !== 200) throw new Error(`GET /docs/json answered ${res.statusCode}: ${res.body.slice(0, 200)}`)
    return res.json()
  } finally {
    await app.close()
    await database.close()
  }
}
