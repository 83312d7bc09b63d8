/**
 * The server's CPU profile under a bench's load: node refuses `--cpu-prof` in NODE_OPTIONS, so a bench passes
 * `BENCH_SERVER_NODE_OPTIONS=--import=./bench/server-cpu-profile.mjs` (resolved from the repository root, the
 * server's working directory) and this starts the inspector's sampling profiler in the server process and
 * writes `<tmpdir>/nowatch-server-<pid>.cpuprofile` when it exits (open it in Chrome DevTools or speedscope).
 * Samples are wall-clock on the main thread: on a loaded machine a write to the database socket shows the time
 * the process waited for a core, not work.
 */
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const session = new Session()
session.connect()
session.post('Profiler.enable')
session.post('Profiler.setSamplingInterval', { interval: 1000 })
session.post('Profiler.start')
process.on('exit', () => {
  // A session on the main thread answers synchronously, so this runs to the end inside the exit handler.
  session.post('Profiler.stop', (err, result) => {
    if (err || !result) return
    const file = join(tmpdir(), `nowatch-server-${process.pid}.cpuprofile`)
    writeFileSync(file, JSON.stringify(result.profile))
    console.error(`cpu profile: ${file}`)
  })
})
