// First, on its own: tracing (when OTEL_* asks) hooks the pg driver's loading, before app.ts imports pg.
import { currentTracing } from './plugins/tracing.ts'

import { buildApp } from './app.ts'
import { type StartupContext, describeStartupError } from './plugins/startup-errors.ts'
import { ensureDevelopmentClient } from './routes/clients/bootstrap.ts'

// What the failure messages name; read raw, since the config may be what failed.
const context: StartupContext = {
  databaseUrl: process.env.DATABASE_URL || undefined,
  dataDir: process.env.DATA_DIR || './data',
  host: process.env.HOST || '127.0.0.1',
  port: Number(process.env.PORT || 3000),
}

/** A start-up failure an operator can fix: plain lines and exit 1. Anything else is a bug: its stack. */
async function failStart(err: unknown, close?: () => Promise<unknown>): Promise<never> {
  await close?.().catch(() => {})
  const message = describeStartupError(err, context)
  if (message === null) throw err
  process.stderr.write(`${message}\n`)
  process.exit(1)
}

const tracing = currentTracing()

let app: Awaited<ReturnType<typeof buildApp>>
try {
  app = await buildApp()
  await ensureDevelopmentClient(app)
} catch (err) {
  await failStart(err)
  throw err
}

// Graceful shutdown: stop accepting, let in-flight requests finish, close the database.
let closing = false
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'shutting down')
    const force = setTimeout(() => {
      app.log.error('shutdown took too long, exiting')
      process.exit(1)
    }, 15_000)
    force.unref()
    app
      .close()
      .then(() => tracing?.shutdown())
      .then(
        () => process.exit(0),
        (err) => {
          app.log.error({ err }, 'error while shutting down')
          process.exit(1)
        },
      )
  })
}

try {
  await app.listen({ port: app.config.PORT, host: app.config.HOST })
} catch (err) {
  await failStart(err, () => app.close())
}
