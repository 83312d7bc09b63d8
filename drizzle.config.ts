import { defineConfig } from 'drizzle-kit'

// Migrations are generated from db/schema by `npm run db:generate` and applied at start on PGlite and PostgreSQL alike.
export default defineConfig({
  dialect: 'postgresql',
  schema: './db/schema/index.ts',
  out: './migrations',
})
