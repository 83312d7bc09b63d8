import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { importGraph } from '../scripts/import-graph.ts'

// STYLE.md, "The direction of dependencies": imports point down (routes → plugins → db), and two
// domains never import each other. `npm run deps:check --list` prints every offending import.
const graph = importGraph(fileURLToPath(new URL('..', import.meta.url)))

t.test('the counter finds what it must refuse (a tree built to break both rules)', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'import-graph-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const files: Record<string, string> = {
    'plugins/auth.ts': "import { x } from '../routes/user/repository.ts'\n",
    'db/schema/a.ts': "export * from '../../routes/a/catalogue.ts'\n",
    'routes/a/catalogue.ts': "import type { B } from '../b/index.ts'\n",
    'routes/b/index.ts': "const a = await import('../a/catalogue.ts')\n",
    'routes/user/repository.ts': "import { db } from '../../db/schema/a.ts'\n",
  }
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true })
    writeFileSync(join(root, path), text)
  }
  const g = importGraph(root)
  t.same(g.upward.map((e) => `${e.from} → ${e.to}`).sort(), [
    'db/schema/a.ts → routes/a/catalogue.ts',
    'plugins/auth.ts → routes/user/repository.ts',
  ])
  t.same(
    g.mutualPairs.map((p) => p.pair),
    [['a', 'b']],
  )
})

t.test('the import graph is read at all', async (t) => {
  t.ok(graph.files.length > 80, `${graph.files.length} files`)
  t.ok(
    graph.edges.some((e) => e.from === 'app.ts' && e.to === 'plugins/auth.ts'),
    'app.ts imports plugins/auth.ts',
  )
})

t.test('no file under plugins/ or db/ imports routes/, nor any lower layer a higher one', async (t) => {
  t.same(
    graph.upward.map((e) => `${e.from} → ${e.to}`),
    [],
  )
})

t.test('no two folders under routes/ import each other', async (t) => {
  t.same(
    graph.mutualPairs.map((p) => `${p.pair.join(' ↔ ')}: ${p.edges.map((e) => `${e.from} → ${e.to}`).join(', ')}`),
    [],
  )
})
