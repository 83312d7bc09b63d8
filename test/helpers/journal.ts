import type { FastifyInstance } from 'fastify'
import { userWithToken } from './fixtures.ts'

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

/** A user with a tiny client: `await alice.call('POST', '/v1/checkins', { mood: 3 })` → `{ status, body }`. */
export async function journalUser(app: FastifyInstance, opts: { timeZone?: string } = {}) {
  const { user, headers } = await userWithToken(app, opts)
  async function call(method: Method, url: string, payload?: unknown) {
    const res = await app.inject({
      method,
      url,
      headers,
      ...(payload === undefined ? {} : { payload: payload as object }),
    })
    return { status: res.statusCode, body: res.body ? res.json() : undefined }
  }
  return { user, headers, call }
}

export type JournalUser = Awaited<ReturnType<typeof journalUser>>

export const daysAgo = (n: number, from = new Date()) => new Date(from.getTime() - n * 86_400_000)
