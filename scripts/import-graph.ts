import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The direction of dependencies, measured from the import statements of the server's own code (tests and
 * bench/ may import anything). Layers, bottom to top:
 *
 *   0 db/                  tables and the client factory
 *   1 plugins/             cross-cutting concerns
 *   2 routes/*.ts          schema pieces every domain shares (routes/common.ts)
 *   3 routes/<domain>/     the domains
 *   4 app.ts, cli.ts, server.ts, scripts/
 *
 * An upward import is a file importing a file of a higher layer. A mutual pair is two folders under routes/
 * each of which imports the other (STYLE.md: two domains never import each other).
 *
 * `npm run deps:check` prints both and exits 1 when there is any; `--list` prints every offending import.
 */

export interface Edge {
  from: string
  to: string
}

export interface ImportGraph {
  files: string[]
  edges: Edge[]
  upward: Edge[]
  mutualPairs: Array<{ pair: [string, string]; edges: Edge[] }>
}

const ROOTS = ['app.ts', 'cli.ts', 'server.ts', 'scripts', 'plugins', 'db', 'routes']
const IMPORT =
  /(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm

function walk(root: string, path: string, out: string[]) {
  const full = join(root, path)
  let st: ReturnType<typeof statSync>
  try {
    st = statSync(full)
  } catch {
    return
  }
  if (st.isDirectory()) {
    for (const entry of readdirSync(full).sort()) walk(root, join(path, entry), out)
  } else if (path.endsWith('.ts')) {
    out.push(path.split('\\').join('/'))
  }
}

export function layerOf(file: string): number {
  if (file.startsWith('db/')) return 0
  if (file.startsWith('plugins/')) return 1
  if (file.startsWith('routes/')) return file.split('/').length === 2 ? 2 : 3
  return 4
}

/** The folder under routes/ a file belongs to (`routes/user/index.ts` → `user`), or null. */
export function domainOf(file: string): string | null {
  const parts = file.split('/')
  return parts[0] === 'routes' && parts.length > 2 ? parts[1] : null
}

export function importGraph(root: string): ImportGraph {
  const files: string[] = []
  for (const r of ROOTS) walk(root, r, files)
  const known = new Set(files)
  const edges: Edge[] = []
  for (const from of files) {
    const text = readFileSync(join(root, from), 'utf8')
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? m[3]
      if (!spec?.startsWith('.')) continue
      const to = relative(root, resolve(root, dirname(from), spec))
        .split('\\')
        .join('/')
      if (known.has(to)) edges.push({ from, to })
    }
  }
  const upward = edges.filter((e) => layerOf(e.from) < layerOf(e.to))

  const byPair = new Map<string, Edge[]>()
  for (const e of edges) {
    const a = domainOf(e.from)
    const b = domainOf(e.to)
    if (!a || !b || a === b) continue
    const key = `${a}\u0000${b}`
    byPair.set(key, [...(byPair.get(key) ?? []), e])
  }
  const mutualPairs: ImportGraph['mutualPairs'] = []
  for (const [key, there] of byPair) {
    const [a, b] = key.split('\u0000')
    if (a > b) continue
    const back = byPair.get(`${b}\u0000${a}`)
    if (back) mutualPairs.push({ pair: [a, b], edges: [...there, ...back] })
  }
  mutualPairs.sort((x, y) => x.pair.join('/').localeCompare(y.pair.join('/')))
  return { files, edges, upward, mutualPairs }
}

function main() {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
  const list = process.argv.includes('--list')
  const g = importGraph(root)
  console.log(`${g.files.length} files, ${g.edges.length} imports between them`)
  console.log(`upward imports (lower layer → higher): ${g.upward.length}`)
  if (list) for (const e of g.upward) console.log(`  ${e.from} → ${e.to}`)
  console.log(`mutual folder pairs under routes/: ${g.mutualPairs.length}`)
  for (const p of g.mutualPairs) {
    console.log(`  ${p.pair[0]} ↔ ${p.pair[1]} (${p.edges.length} imports)`)
    if (list) for (const e of p.edges) console.log(`    ${e.from} → ${e.to}`)
  }
  if (g.upward.length > 0 || g.mutualPairs.length > 0) process.exitCode = 1
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main()
