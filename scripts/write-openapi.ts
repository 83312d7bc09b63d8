import { writeFile } from 'node:fs/promises'
import { stringify } from 'yaml'
import { servedSpec } from './openapi.ts'

// Writes openapi.yaml from the routes' schemas. Review the diff: it is the public contract.
const spec = await servedSpec()
await writeFile(
  new URL('../openapi.yaml', import.meta.url),
  stringify(spec, { lineWidth: 0, aliasDuplicateObjects: false }),
)
console.log('openapi.yaml written')
