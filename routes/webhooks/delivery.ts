import http from 'node:http'
import https from 'node:https'
import type { LookupFunction } from 'node:net'
import { isIP } from 'node:net'
import { Webhook } from 'standardwebhooks'
import { type CheckedTarget, type TargetPolicy, TargetRefused, checkTarget } from './targets.ts'

/**
 * The Standard Webhooks retry schedule (spec, "Deliverability and reliability"): the delay before each
 * next attempt after a failure, about three days in all. After the last one the message has failed.
 */
export const RETRY_DELAYS_MS = [
  5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 50_400_000, 72_000_000, 86_400_000,
]
export const MAX_ATTEMPTS = RETRY_DELAYS_MS.length + 1

/** The delay after failed attempt `attempt` (1-based), with ±10 % jitter, or null when none is left. */
export function retryDelay(attempt: number, retryAfterS?: number, random = Math.random): number | null {
  const base = RETRY_DELAYS_MS[attempt - 1]
  if (base === undefined) return null
  const jittered = Math.round(base * (0.9 + 0.2 * random()))
  // A receiver's Retry-After (429, 503) is honoured when it asks for longer, up to a day.
  return retryAfterS ? Math.max(jittered, Math.min(retryAfterS * 1000, 86_400_000)) : jittered
}

export interface AttemptResult {
  statusCode: number | null
  latencyMs: number
  /** Null on a 2xx. */
  error: string | null
  retryAfterS?: number
}

/** The Standard Webhooks headers: webhook-id, webhook-timestamp, and one `v1,` signature per live secret. */
export function signedHeaders(id: string, body: string, secrets: string[], at: Date): Record<string, string> {
  const signature = secrets.map((s) => new Webhook(s).sign(id, at, body)).join(' ')
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': signature,
  }
}

/** A lookup that answers the address already checked: the connection cannot go anywhere else. */
function pinned(target: CheckedTarget): LookupFunction {
  const { address, family } = target.address
  return ((_host: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options?.all) callback(null, [{ address, family }])
    else callback(null, address, family)
  }) as unknown as LookupFunction
}

/**
 * One attempt: the target is checked again (the address may have changed since the subscription: DNS
 * rebinding), then POSTed to the checked address with a short timeout. A redirect is a failure, never
 * followed; the answer's body is read and dropped.
 */
export async function attempt(
  url: string,
  headers: Record<string, string>,
  body: string,
  policy: TargetPolicy,
  timeoutMs: number,
): Promise<AttemptResult> {
  const start = process.hrtime.bigint()
  const latency = () => Math.round(Number(process.hrtime.bigint() - start) / 1e6)
  let target: CheckedTarget
  try {
    target = await checkTarget(url, policy)
  } catch (err) {
    if (err instanceof TargetRefused) return { statusCode: null, latencyMs: latency(), error: 'refused_address' }
    throw err
  }
  const { url: u } = target
  const lib = u.protocol === 'https:' ? https : http
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1')
  return new Promise<AttemptResult>((resolve) => {
    let settled = false
    const done = (r: AttemptResult) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(r)
    }
    const req = lib.request(
      {
        protocol: u.protocol,
        hostname: host,
        port: u.port || undefined,
        path: `${u.pathname}${u.search}`,
        method: 'POST',
        lookup: pinned(target),
        // A fresh connection each time: the pin applies to it, nothing is reused across targets.
        agent: false,
        ...(u.protocol === 'https:' && !isIP(host) ? { servername: host } : {}),
        headers: {
          ...headers,
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          'user-agent': 'NOWATCH-Webhooks/1.0',
        },
      },
      (res) => {
        res.resume()
        const status = res.statusCode ?? 0
        const retryAfter = Number(res.headers['retry-after'])
        const result: AttemptResult = {
          statusCode: status,
          latencyMs: latency(),
          error: status >= 200 && status < 300 ? null : status >= 300 && status < 400 ? 'redirect' : `http_${status}`,
          ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterS: retryAfter } : {}),
        }
        res.on('end', () => done(result))
        res.on('error', () => done(result))
      },
    )
    const timer = setTimeout(() => {
      done({ statusCode: null, latencyMs: latency(), error: 'timeout' })
      req.destroy()
    }, timeoutMs)
    req.on('error', () => done({ statusCode: null, latencyMs: latency(), error: 'connection_failed' }))
    req.end(body)
  })
}
