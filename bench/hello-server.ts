/**
 * The baseline of bench/auth.ts: a bare Fastify hello-world, started exactly like server.ts (node --import tsx,
 * same HOST/PORT/LOG_LEVEL environment, same logger level), so the ratio measures what the API's request
 * path costs and not the process set-up. Not for production.
 */
import Fastify from 'fastify'

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'warn' } })
app.get('/hello', async () => ({ hello: 'world' }))
app.get('/healthz', async () => ({ status: 'ok' }))
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => app.close().then(() => process.exit(0)))
}
await app.listen({ port: Number(process.env.PORT), host: process.env.HOST ?? '127.0.0.1' })
