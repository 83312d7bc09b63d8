/**
 * Preloaded into the server by bench/soak.ts (NODE_OPTIONS=--import): every SOAK_PROBE_INTERVAL_MS it appends
 * one JSON line to SOAK_PROBE_FILE with the heap used, RSS, the GC time of the interval (PerformanceObserver
 * 'gc' entries) and its full (major) collections. SIGUSR2 writes a heap snapshot into SOAK_PROBE_DIR.
 * https://nodejs.org/docs/latest-v20.x/api/perf_hooks.html#performancenodetiming
 */
import { appendFileSync } from 'node:fs'
import { join } from 'node:path'
import { constants, PerformanceObserver } from 'node:perf_hooks'
import { writeHeapSnapshot } from 'node:v8'

const file = process.env.SOAK_PROBE_FILE
if (file) {
  const interval = Number(process.env.SOAK_PROBE_INTERVAL_MS ?? 10_000)
  let gcMs = 0
  let major = 0
  let minor = 0
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcMs += e.duration
      const kind = e.detail?.kind
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++
      else if (kind === constants.NODE_PERFORMANCE_GC_MINOR) minor++
    }
  }).observe({ entryTypes: ['gc'] })
  let last = performance.now()
  setInterval(() => {
    const now = performance.now()
    const m = process.memoryUsage()
    appendFileSync(
      file,
      `${JSON.stringify({ at: Date.now(), ms: now - last, heapUsed: m.heapUsed, heapTotal: m.heapTotal, rss: m.rss, external: m.external, gcMs, major, minor })}\n`,
    )
    last = now
    gcMs = 0
    major = 0
    minor = 0
  }, interval).unref()
  process.on('SIGUSR2', () => {
    writeHeapSnapshot(join(process.env.SOAK_PROBE_DIR ?? '.', `server-${Date.now()}.heapsnapshot`))
  })
}
