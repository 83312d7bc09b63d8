import { readFile } from 'node:fs/promises'
import fc from 'fast-check'
import type { Test } from 'tap'
import { parse } from 'yaml'
import { buildTestApp } from './app.ts'
import { createClient, createUser, login } from './fixtures.ts'
import {
  type Schema,
  hostile,
  hostileScalar,
  killerStrings,
  naughty,
  setAt,
  stringFields,
  valid,
} from './schema-arbitrary.ts'

// Contract fuzzing: every operation of openapi.yaml gets generated valid and hostile path params,
// query strings and bodies, and bodies, queries and paths whose strings come from a hostile corpus (the
// Big List of Naughty Strings, NUL, lone surrogates, RTL and zero-width characters, 10 kB strings, edge
// date-times). Then a sweep puts the worst of them in every string field of every operation, one
// request each. Every answer must be a status the operation documents, errors in the error shape,
// and never a 500. CI runs a fixed seed; FUZZ_RUNS and FUZZ_SEED make bigger runs.
const RUNS = Number(process.env.FUZZ_RUNS ?? 15)
const SEED = Number(process.env.FUZZ_SEED ?? 20261123)

interface Parameter {
  name: string
  in: 'path' | 'query' | 'header'
  required?: boolean
  schema: Schema
}
interface Operation {
  parameters?: Parameter[]
  requestBody?: { content: Record<string, { schema: Schema }> }
  responses: Record<string, unknown>
  security?: Array<Record<string, string[]>>
}

/**
 * Percent-encoding that, unlike encodeURIComponent and URLSearchParams, keeps a lone surrogate: as the
 * bytes a careless client's UTF-8 encoder writes for it (ED A0 80 for U+D800), which servers must survive.
 */
function percentEncode(text: string): string {
  let out = ''
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    const paired = c >= 0xd800 && c <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00
    if (paired) {
      out += encodeURIComponent(text.slice(i, i + 2))
      i++
    } else if (c >= 0xd800 && c <= 0xdfff) {
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`)
        .join('')
    } else out += encodeURIComponent(text[i])
  }
  return out
}

// Documented once for every route in the spec's description: an over-long URL is 414 uri_too_long.
const GLOBAL = [414]

// Routes that end the caller's session(s): the fuzzer logs in again after calling them.
const SESSION_ENDING = /\/(logout|sign-out|change_password|confirm_new_password)$|^\/v1\/users\/me$|\/sessions\//

/** The contract fuzzer over every operation: the generated requests (`property`) and/or the sweep. */
export async function fuzzEveryOperation(t: Test, parts: { property: boolean; sweep: boolean }) {
  const spec = parse(await readFile(new URL('../../openapi.yaml', import.meta.url), 'utf8'))
  // Re-logins after session-ending routes would pile up sessions: evict instead of refusing.
  const app = await buildTestApp(t, { env: { SESSION_LIMIT_POLICY: 'evict_oldest' } })
  const client = await createClient(app)
  const user = await createUser(app)
  const admin = await createUser(app, { role: 'admin' })
  const tokens = { user: await login(app, user), admin: await login(app, admin) }
  let requests = 0
  let swept = 0

  for (const [path, item] of Object.entries<Record<string, Operation>>(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const where = `${method.toUpperCase()} ${path}`
      const isAdmin = path.includes('/admin/')
      const needsBearer = op.security?.some((s) => 'bearerAuth' in s)
      const needsClient = op.security?.some((s) => 'clientToken' in s)
      const params = op.parameters ?? []
      const pathParams = params.filter((p) => p.in === 'path')
      const queryParams = params.filter((p) => p.in === 'query')
      const jsonBody = op.requestBody?.content?.['application/json']?.schema

      const pathArb = fc.record(
        Object.fromEntries(
          pathParams.map((p) => [
            p.name,
            // The caller's own id reaches past the share check to the handlers; random ones are 404.
            p.name === 'user_id' || p.name === 'owner_id'
              ? fc.oneof(fc.constant(user.id), valid(p.schema), hostileScalar.map(String), naughty(p.schema))
              : fc.oneof(valid(p.schema), hostileScalar.map(String), naughty(p.schema)),
          ]),
        ),
      )
      const queryArb = fc.oneof(
        fc.record(Object.fromEntries(queryParams.map((p) => [p.name, valid(p.schema)])), {
          requiredKeys: queryParams.filter((p) => p.required).map((p) => p.name),
        }),
        fc.record(Object.fromEntries(queryParams.map((p) => [p.name, hostileScalar])), { requiredKeys: [] }),
        fc.record(Object.fromEntries(queryParams.map((p) => [p.name, naughty(p.schema)])), {
          requiredKeys: queryParams.filter((p) => p.required).map((p) => p.name),
        }),
      )
      const bodyArb = jsonBody
        ? fc.oneof(valid(jsonBody), hostile(jsonBody), naughty(jsonBody))
        : fc.constant(undefined)
      const authArb = fc.constantFrom('right', 'right', 'right', 'none')

      async function call(
        pathValues: Record<string, unknown>,
        query: Record<string, unknown>,
        body: unknown,
        auth: string,
      ) {
        let url = path
        for (const [k, v] of Object.entries(pathValues)) url = url.replace(`{${k}}`, percentEncode(String(v)))
        const qs = Object.entries(query)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => `${percentEncode(k)}=${percentEncode(typeof v === 'string' ? v : JSON.stringify(v))}`)
          .join('&')
        const headers: Record<string, string> = {}
        if (auth === 'right') {
          if (needsBearer) headers.authorization = `Bearer ${(isAdmin ? tokens.admin : tokens.user).access}`
          if (needsClient) headers['x-auth-token'] = client.x_auth_token
        }
        const res = await app.inject({
          method: method.toUpperCase() as 'GET',
          url: qs ? `${url}?${qs}` : url,
          headers,
          ...(body !== undefined
            ? { payload: JSON.stringify(body), headers: { ...headers, 'content-type': 'application/json' } }
            : {}),
        })
        requests++
        if (SESSION_ENDING.test(path)) {
          tokens.user = await login(app, user)
          tokens.admin = await login(app, admin)
        }
        const documented = Object.keys(op.responses)
        if (
          res.statusCode >= 500 ||
          !(documented.includes(String(res.statusCode)) || GLOBAL.includes(res.statusCode))
        ) {
          throw new Error(
            `${where} → ${res.statusCode} (documented: ${documented.join(', ')}): ${res.body.slice(0, 300)}`,
          )
        }
        if (res.statusCode >= 400) {
          const b = res.json()
          if (typeof b.error !== 'string' || typeof b.message !== 'string')
            throw new Error(`${where}: no error shape: ${res.body}`)
        }
      }

      if (parts.property) {
        const out = await fc.check(
          fc.asyncProperty(pathArb, queryArb, bodyArb, authArb, (pathValues, query, body, auth) =>
            call(pathValues, query as Record<string, unknown>, body, auth),
          ),
          { numRuns: RUNS, seed: SEED, endOnFailure: true },
        )
        // fast-check's own report prints the (possibly huge) counterexample; the cause is enough.
        if (out.failed)
          t.fail(String((out.errorInstance as Error | undefined)?.message ?? `${where} failed`).slice(0, 600))
        else t.pass(where)
      }
      if (!parts.sweep) continue

      // The sweep: each string field of the body, the query and the path gets each of the worst strings,
      // on an otherwise valid request (fixed values from the same seed), one request each.
      const one = (schema: Schema) => fc.sample(valid(schema), { seed: SEED, numRuns: 1 })[0]
      const baseBody = jsonBody ? one(jsonBody) : undefined
      const basePath = Object.fromEntries(
        pathParams.map((p) => [p.name, p.name === 'user_id' || p.name === 'owner_id' ? user.id : one(p.schema)]),
      )
      const baseQuery = Object.fromEntries(queryParams.filter((p) => p.required).map((p) => [p.name, one(p.schema)]))
      const sweep: Array<[string, () => Promise<void>]> = []
      for (const field of jsonBody ? stringFields(jsonBody) : []) {
        for (const bad of killerStrings(field.schema)) {
          sweep.push([
            `body.${field.path.join('.')}`,
            () => call(basePath, baseQuery, setAt(baseBody, field.path, bad), 'right'),
          ])
        }
      }
      for (const p of queryParams.filter((q) => stringFields(q.schema).length > 0)) {
        for (const bad of killerStrings(p.schema)) {
          sweep.push([`query.${p.name}`, () => call(basePath, { ...baseQuery, [p.name]: bad }, baseBody, 'right')])
        }
      }
      for (const p of pathParams) {
        for (const bad of killerStrings(p.schema).slice(0, 2)) {
          sweep.push([`path.${p.name}`, () => call({ ...basePath, [p.name]: bad }, baseQuery, baseBody, 'right')])
        }
      }
      const failures: string[] = []
      for (const [field, run] of sweep) {
        try {
          await run()
        } catch (err) {
          failures.push(`${field}: ${String((err as Error).message).slice(0, 300)}`)
        }
      }
      swept += sweep.length
      if (failures.length) t.fail(`${where} sweep: ${failures.slice(0, 5).join(' | ')}`)
      else t.pass(`${where}: ${sweep.length} sweep requests`)
    }
  }
  t.comment(`fuzz: ${requests} requests (${swept} in the sweep), seed ${SEED}, ${RUNS} runs per operation`)
}
