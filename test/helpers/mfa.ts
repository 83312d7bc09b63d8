import type { FastifyInstance } from 'fastify'
import { generate } from 'otplib'

/** TOTP codes the way an authenticator app makes them, for any time (ms) the test chooses. */
export function totpAt(secret: string, ms: number): Promise<string> {
  return generate({ secret, epoch: Math.floor(ms / 1000) })
}

/** The start (ms) of the 30 s time step `n` steps after the one holding `ms`. */
export function stepStart(ms: number, n = 0): number {
  return (Math.floor(ms / 30_000) + n) * 30_000
}

/** Enrols and confirms an authenticator app for the bearer; answers the secret and the recovery codes. */
export async function enrolTotp(app: FastifyInstance, headers: Record<string, string>, now: number) {
  const started = await app.inject({ method: 'POST', url: '/v1/users/me/mfa/totp', headers })
  if (started.statusCode !== 200) throw new Error(`enrol: ${started.statusCode} ${started.body}`)
  const { secret } = started.json() as { secret: string }
  const confirmed = await app.inject({
    method: 'POST',
    url: '/v1/users/me/mfa/totp/confirm',
    headers,
    payload: { code: await totpAt(secret, now) },
  })
  if (confirmed.statusCode !== 200) throw new Error(`confirm: ${confirmed.statusCode} ${confirmed.body}`)
  return { secret, recoveryCodes: (confirmed.json() as { recovery_codes: string[] }).recovery_codes }
}
