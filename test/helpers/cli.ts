import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** The real operator CLI (`cli.ts`) as a child process, with only the environment given. */
export function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return runNode(['--import', 'tsx', 'cli.ts', ...args], env)
}

/** Any entry of the repo as a child process (`server.ts` for start-up failures), to its exit. */
export function runNode(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { PATH: process.env.PATH, LOG_LEVEL: 'warn', BCRYPT_COST: '4', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c) => {
      stdout += c
    })
    child.stderr.on('data', (c) => {
      stderr += c
    })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`node ${args.join(' ')} did not exit: ${stdout}${stderr}`))
    }, timeoutMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      // Let the pipes drain.
      setImmediate(() => resolve({ code, stdout, stderr }))
    })
  })
}
