/**
 * Firmware download benchmark (issue 8). Not a test: figures go to BENCHMARKS.md.
 *
 *   npm run bench:firmware
 *
 * Starts bench/firmware-server.ts (the API server on PGlite in a temp folder, 127.0.0.1 only) as a child
 * process, uploads a SIZE_MB image (default 50) through POST /v1/admin/firmware, publishes it, then:
 *  1. sequential downloads, RUNS each (default 5): GET /v1/firmware/{id}/download against the same file sent
 *     by @fastify/static from the same server (the plain static send to compare with), MB/s;
 *  2. CONCURRENCY (default 20) simultaneous downloads of each, aggregate MB/s, and the server's RSS
 *     (/proc/<pid>/status, every 20 ms) before, at peak and after;
 *  3. CONCURRENCY simultaneous slow readers (about 2 MB/s each, SLOW_S seconds, then they hang up): the
 *     case where a server that buffers would grow; RSS as above.
 * The sha256 of one full download and of one download resumed by Range are checked against the release.
 * Everything is bounded by BENCH_TIMEOUT_S (default 300). Linux only (reads /proc).
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { benchHarness, benchServerEnv } from './harness.ts'

const SIZE_MB = Number(process.env.SIZE_MB ?? 50)
const RUNS = Number(process.env.RUNS ?? 5)
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 20)
const SLOW_S = Number(process.env.SLOW_S ?? 5)
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S ?? 300)
const MB = 1024 * 1024

const bench = benchHarness(TIMEOUT_S)
const dataDir = mkdtempSync(join(tmpdir(), 'nowatch-bench-firmware-'))
// Also when the time limit ends the run.
process.once('exit', () => rmSync(dataDir, { recursive: true, force: true }))

interface Seed {
  email: string
  password: string
  clientToken: string
}

/** bench/firmware-server.ts, started like every server process; it prints its seed as one JSON line before listening. */
async function startFirmwareServer() {
  const server = await bench.server(
    {
      ...benchServerEnv(),
      DATA_DIR: dataDir,
      JOBS_ENABLED: 'false',
      REQUEST_TIMEOUT_MS: '0',
    },
    { script: 'bench/firmware-server.ts', testDefaults: false },
  )
  const seedLine = () =>
    server
      .output()
      .split('\n')
      .find((l) => l.startsWith('{"email"') && l.endsWith('}'))
  // Printed before it listens; the pipe may still be on its way to this process.
  for (let i = 0; i < 50 && !seedLine(); i++) await new Promise((r) => setTimeout(r, 100))
  const line = seedLine()
  if (!line) throw new Error(`bench/firmware-server.ts printed no seed: ${server.output()}`)
  return { url: server.url, pid: server.child.pid as number, seed: JSON.parse(line) as Seed }
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : Number.NaN
}

/** Samples the server's RSS every 20 ms while `work` runs. */
async function withMemory<T>(pid: number, work: () => Promise<T>) {
  const before = rssMb(pid)
  let peak = before
  const timer = setInterval(() => {
    peak = Math.max(peak, rssMb(pid))
  }, 20)
  try {
    const result = await work()
    await new Promise((r) => setTimeout(r, 300))
    return { result, before, peak, after: rssMb(pid) }
  } finally {
    clearInterval(timer)
  }
}

interface Fetched {
  bytes: number
  sha256?: string
}

/** One GET over a fresh connection; optionally hashed, optionally throttled, optionally cut after `stopMs`. */
function download(
  url: string,
  headers: Record<string, string>,
  opts: { hash?: boolean; bytesPerSecond?: number; stopMs?: number } = {},
): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent: false }, (res) => {
      if (res.statusCode !== 200 && res.statusCode !== 206) {
        reject(new Error(`${url}: ${res.statusCode}`))
        res.resume()
        return
      }
      const hash = opts.hash ? createHash('sha256') : null
      let bytes = 0
      const started = Date.now()
      const done = () => resolve({ bytes, sha256: hash?.digest('hex') })
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length
        hash?.update(chunk)
        if (opts.bytesPerSecond) {
          // Read no faster than the budget: pause until the elapsed time catches up.
          const due = (bytes / opts.bytesPerSecond) * 1000 - (Date.now() - started)
          if (due > 0) {
            res.pause()
            setTimeout(() => res.resume(), due)
          }
        }
      })
      res.on('end', done)
      res.on('error', reject)
      if (opts.stopMs) {
        setTimeout(() => {
          req.destroy()
          done()
        }, opts.stopMs)
      }
    })
    req.on('error', (err) => (opts.stopMs ? undefined : reject(err)))
    req.end()
  })
}

// biome-ignore lint/suspicious/noExplicitAny: the bench reads a few fields of known answers
async function json(url: string, init: RequestInit): Promise<any> {
  const res = await fetch(url, init)
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${url}: ${res.status} ${await res.text()}`)
  return res.json()
}

async function main() {
  const { url, pid, seed } = await startFirmwareServer()
  // Admin power comes from the admin login alone.
  const tokens = await json(`${url}/v2/auth/login/admin`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-auth-token': seed.clientToken },
    body: JSON.stringify({ email: seed.email, password: seed.password }),
  })
  const auth = { authorization: `Bearer ${tokens.access}` }

  // The image is generated while it is sent, so this process does not hold 50 MB either.
  const imageHash = createHash('sha256')
  async function* image() {
    for (let i = 0; i < SIZE_MB; i++) {
      const chunk = randomBytes(MB)
      imageHash.update(chunk)
      yield chunk
    }
  }
  const uploadStart = performance.now()
  const uploaded = await withMemory(pid, () =>
    json(`${url}/v1/admin/firmware?hardware_model=NW-BENCH&version=1.0.0`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/octet-stream', 'content-length': String(SIZE_MB * MB) },
      body: Readable.toWeb(Readable.from(image())) as ReadableStream,
      duplex: 'half',
    } as RequestInit),
  )
  const uploadS = (performance.now() - uploadStart) / 1000
  const release = uploaded.result as { id: string; sha256: string; size: number }
  if (release.sha256 !== imageHash.digest('hex')) throw new Error('upload sha256 differs')
  await json(`${url}/v1/admin/firmware/${release.id}/publish`, { method: 'POST', headers: auth })

  const routes = {
    firmware: `${url}/v1/firmware/${release.id}/download`,
    static: `${url}/bench-static/${release.id}.bin`,
  }

  const full = await download(routes.firmware, auth, { hash: true })
  const half = Math.floor(release.size / 2)
  const a = await download(routes.firmware, { ...auth, range: `bytes=0-${half - 1}` }, { hash: false })
  const resumedHash = createHash('sha256')
  await new Promise<void>((resolve, reject) => {
    request(routes.firmware, { headers: { ...auth, range: `bytes=0-${half - 1}` }, agent: false }, (r1) => {
      r1.on('data', (c: Buffer) => resumedHash.update(c))
      r1.on('end', () => {
        request(routes.firmware, { headers: { ...auth, range: `bytes=${half}-` }, agent: false }, (r2) => {
          r2.on('data', (c: Buffer) => resumedHash.update(c))
          r2.on('end', resolve)
        })
          .on('error', reject)
          .end()
      })
    })
      .on('error', reject)
      .end()
  })
  const checks = {
    full_download_sha256_ok: full.sha256 === release.sha256,
    resumed_download_sha256_ok: resumedHash.digest('hex') === release.sha256 && a.bytes === half,
  }

  const rows: Record<string, unknown>[] = []
  for (const [name, target] of Object.entries(routes)) {
    const headers = name === 'firmware' ? auth : {}
    await download(target, headers) // warm-up
    const speeds: number[] = []
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now()
      const got = await download(target, headers)
      speeds.push(got.bytes / MB / ((performance.now() - t0) / 1000))
    }
    speeds.sort((x, y) => x - y)
    const concurrent = await withMemory(pid, async () => {
      const t0 = performance.now()
      const all = await Promise.all(Array.from({ length: CONCURRENCY }, () => download(target, headers)))
      const bytes = all.reduce((s, f) => s + f.bytes, 0)
      return bytes / MB / ((performance.now() - t0) / 1000)
    })
    const slow = await withMemory(pid, async () => {
      const all = await Promise.all(
        Array.from({ length: CONCURRENCY }, () =>
          download(target, headers, { bytesPerSecond: 2 * MB, stopMs: SLOW_S * 1000 }),
        ),
      )
      return all.reduce((s, f) => s + f.bytes, 0) / MB
    })
    rows.push({
      route: name,
      sequential_mb_s_median: round(speeds[Math.floor(speeds.length / 2)]),
      sequential_mb_s_min_max: [round(speeds[0]), round(speeds[speeds.length - 1])],
      [`concurrent_${CONCURRENCY}_aggregate_mb_s`]: round(concurrent.result),
      [`concurrent_${CONCURRENCY}_rss_mb_before_peak_after`]: [
        concurrent.before,
        concurrent.peak,
        concurrent.after,
      ].map(round),
      [`slow_${CONCURRENCY}_mb_served`]: round(slow.result),
      [`slow_${CONCURRENCY}_rss_mb_before_peak_after`]: [slow.before, slow.peak, slow.after].map(round),
    })
  }

  console.log(
    JSON.stringify(
      {
        date: new Date().toISOString(),
        machine: {
          nproc: cpus().length,
          cpu: cpus()[0]?.model,
          memory_gib: round(totalmem() / 1024 ** 3),
          node: process.version,
        },
        image_mb: SIZE_MB,
        upload: {
          seconds: round(uploadS),
          mb_s: round(SIZE_MB / uploadS),
          rss_mb_before_peak_after: [uploaded.before, uploaded.peak, uploaded.after].map(round),
        },
        checks,
        downloads: rows,
      },
      null,
      2,
    ),
  )
}

const round = (n: number) => Math.round(n * 10) / 10

main()
  .then(async () => {
    await bench.cleanUp()
    process.exit(0)
  })
  .catch(async (err) => {
    console.error(err)
    await bench.cleanUp()
    process.exit(1)
  })
