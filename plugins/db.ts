import fp from 'fastify-plugin'
import { type Database, type Db, openDatabase } from '../db/client.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The one Drizzle database every domain's repository is built on. */
    db: Db
    database: Database
  }
}

export interface DbPluginOptions {
  /** A database opened by the caller (tests, CLI); the caller closes it. */
  database?: Database
  /** Apply pending migrations at boot (default true). */
  migrate?: boolean
}

export function replicaUrls(setting: string): string[] {
  return setting
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean)
}

export default fp<DbPluginOptions>(
  async function dbPlugin(app, opts) {
    const { config } = app
    const owned = !opts.database
    const database =
      opts.database ??
      (await openDatabase({
        databaseUrl: config.DATABASE_URL,
        directUrl: config.DATABASE_DIRECT_URL,
        dataDir: config.DATA_DIR,
        poolMax: config.PG_POOL_MAX,
        replicaUrls: replicaUrls(config.DATABASE_REPLICA_URLS),
        replica: {
          maxLagS: config.REPLICA_MAX_LAG_S,
          checkIntervalMs: config.REPLICA_CHECK_INTERVAL_MS,
          log: app.log,
        },
      }))
    if (opts.migrate !== false) await database.migrate()
    // The embedded database in a folder is this process's alone; the CLI reaches it through a socket.
    if (owned && database.serveSocket) {
      try {
        const path = await database.serveSocket(app.log)
        app.log.info({ socket: path }, 'embedded database served to the CLI on a Unix socket')
      } catch (err) {
        app.log.warn({ err }, 'the CLI socket could not be opened: the CLI cannot reach DATA_DIR while the server runs')
      }
    }
    app.decorate('database', database)
    app.decorate('db', database.db)
    if (owned) {
      app.addHook('onClose', async function closeDatabase() {
        await database.close()
      })
    }
  },
  { name: 'db', dependencies: ['config'] },
)
