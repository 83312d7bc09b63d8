import { buildApp } from './app.ts'
import { ConfigError } from './plugins/config.ts'
import { ensureDevelopmentClient } from './routes/clients/bootstrap.ts'

let app: Awaited<ReturnType<typeof buildApp>>
try {
  app = await buildApp()
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message)
    process.exit(1)
  }
  throw err
}

await ensureDevelopmentClient(app)

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
    app.close().then(
      () => process.exit(0),
      (err) => {
        app.log.error({ err }, 'error while shutting down')
        process.exit(1)
      },
    )
  })
}

await app.listen({ port: app.config.PORT, host: app.config.HOST })
