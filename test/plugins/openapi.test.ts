import { readFile } from 'node:fs/promises'
import t from 'tap'
import { parse } from 'yaml'
import { REFERENCE_TAGS, TAGS } from '../../plugins/swagger.ts'
import { servedSpec } from '../../scripts/openapi.ts'

// openapi.yaml is the contract. The served spec must equal it exactly (after YAML/JSON parsing);
// a route changed without the yaml fails here. `npm run spec:write` rewrites the yaml for review.
t.test('the served spec equals openapi.yaml', async (t) => {
  const served = await servedSpec()
  const file = parse(await readFile(new URL('../../openapi.yaml', import.meta.url), 'utf8'))
  t.same(served, file, 'served /docs/json differs from openapi.yaml: run `npm run spec:write` and review the diff')
  const servedPaths = Object.keys(served.paths as object).sort()
  const filePaths = Object.keys(file.paths).sort()
  t.same(servedPaths, filePaths, 'same paths')
})

t.test('the spec names the product, both credentials and every tag of the reference', async (t) => {
  const file = parse(await readFile(new URL('../../openapi.yaml', import.meta.url), 'utf8'))
  t.equal(file.info.title, 'NOWATCH API')
  t.equal(file.info.version, '0.9.0')
  t.match(file.openapi, /^3\./)
  t.same(Object.keys(file.components.securitySchemes).sort(), ['bearerAuth', 'clientToken', 'oauth2'])
  t.equal(file.components.securitySchemes.clientToken.name, 'x-auth-token')
  for (const tag of REFERENCE_TAGS) {
    t.ok(
      file.tags.some((x: { name: string }) => x.name === tag),
      `tag ${tag}`,
    )
  }
  t.equal(file.tags.length, TAGS.length)
})

t.test('every operation declares a summary, tags and an error body for each 4xx/5xx', async (t) => {
  const file = parse(await readFile(new URL('../../openapi.yaml', import.meta.url), 'utf8'))
  for (const [path, item] of Object.entries<Record<string, Record<string, unknown>>>(file.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const where = `${method.toUpperCase()} ${path}`
      t.ok(op.summary, `${where} has a summary`)
      t.ok(Array.isArray(op.tags) && (op.tags as string[]).length > 0, `${where} has tags`)
      const responses = op.responses as Record<
        string,
        { content?: Record<string, { schema: { properties?: object } }> }
      >
      for (const [status, r] of Object.entries(responses)) {
        if (Number(status) >= 400) {
          const schema = r.content?.['application/json']?.schema
          t.ok(schema?.properties && 'error' in schema.properties, `${where} ${status} has the error body`)
        }
      }
    }
  }
})
