import { randomUUID } from 'node:crypto'
import {
  type AuthenticationResponseJSON,
  type RegistrationResponseJSON,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { generateSecret, generateURI, verify as verifyTotpCode } from 'otplib'
import QRCode from 'qrcode'
import type { DbOrTx } from '../../db/client.ts'
import { AppError, errors } from '../../plugins/errors.ts'
import { verifyPassword } from '../auth/passwords.ts'
import { type SessionAuth, type Tokens, createAuthService, requestMeta } from '../auth/service.ts'
import { type UserRow, createUserRepository } from '../user/repository.ts'
import {
  decryptSecret,
  encryptSecret,
  hashRecoveryCode,
  mfaKeys,
  newRecoveryCode,
  normaliseRecoveryCode,
  sameHash,
  sha256,
} from './crypto.ts'
import { MFA_TOKEN_ATTEMPTS } from './gate.ts'
import { mfaMails } from './mails.ts'
import { type ChallengePurpose, type PasskeyRow, createMfaRepository } from './repository.ts'

export const TOTP_PERIOD_S = 30
/** ±1 time step (RFC 6238 §5.2 allows for clock drift and the time it takes to type the code). */
const TOTP_TOLERANCE_S = TOTP_PERIOD_S
const RECOVERY_CODE_COUNT = 10
const CHALLENGE_TTL_S = 300
export const MAX_PASSKEYS = 20

export type Factor = { kind: 'otp' } | { kind: 'passkey'; passkey: PasskeyRow; amr: string[]; userVerified: boolean }

const badCode = () => errors.unauthorized('invalid_code', 'The code is wrong, already used or expired.')
const badPasskey = () => errors.unauthorized('passkey_rejected', 'This passkey could not be verified for this account.')

/** The WebAuthn user handle: the account id's 16 bytes (opaque, no personal data, stable across passkeys). */
export function userHandle(userId: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(userId.replace(/-/g, ''), 'hex'))
}

/** RFC 8176: `hwk` for a key bound to one authenticator, `swk` for a synced one; `user` when the user was verified. */
export function passkeyAmr(deviceType: PasskeyRow['deviceType'], userVerified: boolean): string[] {
  return [deviceType === 'multiDevice' ? 'swk' : 'hwk', ...(userVerified ? ['user'] : [])]
}

export function createMfaService(app: FastifyInstance) {
  const { config, db, mailer } = app
  const repo = createMfaRepository(db)
  const auth = createAuthService(app)
  const users = createUserRepository(db)
  const keys = mfaKeys(config)
  const rp = { id: config.WEBAUTHN_RP_ID, name: config.WEBAUTHN_RP_NAME, origins: config.webauthnOrigins }

  async function newRecoveryCodes(userId: string, tx: Parameters<typeof repo.replaceRecoveryCodes>[2]) {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode)
    await repo.replaceRecoveryCodes(
      userId,
      codes.map((c) => hashRecoveryCode(keys.recovery, c)),
      tx,
    )
    return codes
  }

  /** The time step a code matches within ±1 step of now, or null. Comparison is constant-time (otplib). */
  async function matchingStep(secret: string, code: string): Promise<number | null> {
    if (!/^\d{6}$/.test(code)) return null
    const result = await verifyTotpCode({
      secret,
      token: code,
      epoch: Math.floor(app.mfa.now() / 1000),
      epochTolerance: TOTP_TOLERANCE_S,
      period: TOTP_PERIOD_S,
    })
    // The TOTP result names the time step it matched (otplib's replay protection hook).
    return result.valid && 'timeStep' in result ? result.timeStep : null
  }

  /** The stored secret, or null when it cannot be read (MFA_ENCRYPTION_KEY changed): the codes then fail. */
  function readSecret(stored: string, userId: string): string | null {
    try {
      return decryptSecret(keys.totp, stored, userId)
    } catch (err) {
      app.log.error({ err, userId }, 'TOTP secret unreadable: was MFA_ENCRYPTION_KEY (or JWT_SECRET) changed?')
      return null
    }
  }

  /** TOTP (6 digits) or a recovery code; true once per code. */
  async function checkCode(userId: string, code: string): Promise<boolean> {
    const trimmed = code.replace(/\s/g, '')
    if (/^\d{6}$/.test(trimmed)) {
      const factor = await repo.totp(userId)
      if (!factor?.confirmedAt) return false
      const secret = readSecret(factor.secretEncrypted, userId)
      const step = secret === null ? null : await matchingStep(secret, trimmed)
      return step !== null && (await repo.useTotpStep(userId, factor.id, step, false))
    }
    if (normaliseRecoveryCode(trimmed).length !== 10) return false
    const hash = hashRecoveryCode(keys.recovery, trimmed)
    // Every unused code is compared, in constant time, whichever matches.
    let match: string | null = null
    for (const row of await repo.unusedRecoveryCodes(userId)) if (sameHash(row.codeHash, hash)) match = row.id
    return match !== null && (await repo.useRecoveryCode(userId, match))
  }

  async function assertionOptions(purpose: ChallengePurpose, userId: string | null) {
    const allow = userId ? await repo.passkeysOf(userId) : []
    const options = await generateAuthenticationOptions({
      rpID: rp.id,
      timeout: CHALLENGE_TTL_S * 1000,
      // A passwordless login is both factors at once: the authenticator must verify the user.
      userVerification: purpose === 'login' ? 'required' : 'preferred',
      allowCredentials: allow.map((p) => ({ id: p.credentialId, transports: p.transports })),
    })
    await repo.saveChallenge(options.challenge, purpose, userId, CHALLENGE_TTL_S)
    return options
  }

  /**
   * Verifies an assertion against the stored credential and a live challenge of this purpose (consumed
   * whatever the outcome). `userId` null: a discoverable login, the credential's owner is the account.
   */
  async function checkAssertion(
    purpose: ChallengePurpose,
    userId: string | null,
    response: AuthenticationResponseJSON,
    /** The one challenge this ceremony may answer (the OAuth page binds it to its interaction). */
    boundChallenge?: string,
  ) {
    const passkey = await repo.passkeyByCredentialId(response.id, userId)
    if (!passkey) {
      // Spend the challenge anyway: one ceremony, one try.
      const challenge = challengeOf(response)
      if (challenge) await repo.consumeChallenge(challenge, purpose, userId)
      throw badPasskey()
    }
    if (passkey.cloneWarningAt) throw badPasskey()
    if (userId === null) {
      const handle = response.response.userHandle
      if (!handle || handle !== Buffer.from(userHandle(passkey.userId)).toString('base64url')) throw badPasskey()
    }
    let verification: Awaited<ReturnType<typeof verifyAuthenticationResponse>>
    try {
      verification = await verifyAuthenticationResponse({
        response,
        expectedChallenge: async (c) =>
          (await repo.consumeChallenge(c, purpose, userId)) && (boundChallenge === undefined || c === boundChallenge),
        expectedOrigin: rp.origins,
        expectedRPID: rp.id,
        credential: {
          id: passkey.credentialId,
          publicKey: new Uint8Array(Buffer.from(passkey.publicKey, 'base64url')),
          counter: passkey.counter,
          transports: passkey.transports,
        },
        requireUserVerification: purpose === 'login',
      })
    } catch (err) {
      // The library refuses a counter that did not grow: a cloned authenticator may be in use (WebAuthn §6.1.1).
      if (/counter value/i.test((err as Error).message)) {
        await repo.flagClone(passkey.userId, passkey.id)
        const owner = await users.findById(passkey.userId)
        if (owner)
          await db.transaction((tx) => mailer.enqueue(tx, mfaMails.passkeyCloneWarning(owner.email, passkey.name)))
        app.log.warn({ passkeyId: passkey.id }, 'passkey signature counter went backwards: possible clone')
      }
      throw badPasskey()
    }
    if (!verification.verified) throw badPasskey()
    const info = verification.authenticationInfo
    await repo.passkeyUsed(passkey.userId, passkey.id, info.newCounter, info.credentialBackedUp)
    return { passkey, userVerified: info.userVerified, amr: passkeyAmr(passkey.deviceType, info.userVerified) }
  }

  function challengeOf(response: AuthenticationResponseJSON): string | null {
    try {
      const data = JSON.parse(Buffer.from(response.response.clientDataJSON, 'base64url').toString('utf8'))
      return typeof data.challenge === 'string' ? data.challenge : null
    } catch {
      return null
    }
  }

  /**
   * A passwordless passkey login (discoverable credential): the account it names, if it may log in, and
   * how it authenticated. Opens nothing (`passkeyLogin` and the OAuth sign-in page end here).
   */
  async function passkeyAccount(response: AuthenticationResponseJSON, boundChallenge?: string) {
    const result = await checkAssertion('login', null, response, boundChallenge)
    const user = await users.findById(result.passkey.userId)
    if (!loginAllowed(user)) throw badPasskey()
    return { user, amr: result.amr, userVerified: result.userVerified }
  }

  /** Not disabled, and not locked for an e-mail left unverified past the deadline (as the password login). */
  /** A wrong second factor or re-authentication counts in the account's login failures (the login's backoff). */
  async function failedSecondStep(
    request: FastifyRequest,
    user: UserRow,
    reason: 'invalid_mfa_code' | 'reauthentication_failed' = 'invalid_mfa_code',
  ) {
    await auth.history.record({
      userId: user.id,
      email: user.email,
      success: false,
      reason,
      ...requestMeta(request),
    })
  }

  function loginAllowed(user: UserRow | null): user is UserRow {
    if (!user || user.disabledAt) return false
    const deadline = user.createdAt.getTime() + config.EMAIL_VERIFICATION_DEADLINE_DAYS * 86400_000
    return user.emailVerifiedAt !== null || Date.now() <= deadline
  }

  return {
    // TOTP enrolment

    async startTotp(user: Pick<UserRow, 'id' | 'email'>) {
      const secret = generateSecret({ length: 20 })
      const stored = await repo.startTotp(user.id, encryptSecret(keys.totp, secret, user.id))
      if (!stored)
        throw errors.conflict('totp_already_enabled', 'An authenticator app is already set up; remove it first.')
      const uri = generateURI({ issuer: config.WEBAUTHN_RP_NAME, label: user.email, secret, period: TOTP_PERIOD_S })
      const svg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 })
      return {
        secret,
        otpauth_uri: uri,
        qr_code: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`,
        algorithm: 'SHA1' as const,
        digits: 6 as const,
        period: 30 as const,
      }
    },

    async confirmTotp(user: Pick<UserRow, 'id' | 'email'>, code: string) {
      const factor = await repo.totp(user.id)
      if (!factor) throw errors.notFound('No authenticator app enrolment is pending; start one first.')
      if (factor.confirmedAt)
        throw errors.conflict('totp_already_enabled', 'The authenticator app is already confirmed.')
      const secret = readSecret(factor.secretEncrypted, user.id)
      const step = secret === null ? null : await matchingStep(secret, code.trim())
      if (step === null) throw errors.badRequest('invalid_code', 'The code is wrong or expired.')
      return db.transaction(async (tx) => {
        if (!(await repo.useTotpStep(user.id, factor.id, step, true, tx))) {
          throw errors.badRequest('invalid_code', 'The code is wrong or expired.')
        }
        const codes = await newRecoveryCodes(user.id, tx)
        await mailer.enqueue(tx, mfaMails.factorAdded(user.email, 'an authenticator app'))
        return { recovery_codes: codes }
      })
    },

    async removeTotp(user: Pick<UserRow, 'id' | 'email'>) {
      await db.transaction(async (tx) => {
        if (!(await repo.deleteTotp(user.id, tx))) throw errors.notFound('No authenticator app is set up.')
        if ((await repo.passkeysOf(user.id, tx)).length === 0) await repo.deleteRecoveryCodes(user.id, tx)
        await mailer.enqueue(tx, mfaMails.factorRemoved(user.email, 'the authenticator app'))
      })
    },

    async regenerateRecoveryCodes(user: Pick<UserRow, 'id' | 'email'>) {
      if (!(await repo.hasFactor(user.id))) {
        throw errors.conflict('no_second_factor', 'Recovery codes back up a second factor; set one up first.')
      }
      return db.transaction(async (tx) => {
        const codes = await newRecoveryCodes(user.id, tx)
        await mailer.enqueue(tx, mfaMails.recoveryCodesRegenerated(user.email))
        return { recovery_codes: codes }
      })
    },

    async factors(userId: string) {
      const [totp, recovery, keys] = [
        await repo.totp(userId),
        await repo.recoveryCodeSummary(userId),
        await repo.passkeysOf(userId),
      ]
      return {
        totp: totp?.confirmedAt
          ? {
              enabled: true as const,
              created: totp.confirmedAt.toISOString(),
              last_used: totp.lastUsedAt?.toISOString() ?? null,
            }
          : null,
        recovery_codes: recovery ? { remaining: recovery.remaining, created: recovery.created.toISOString() } : null,
        passkeys: keys.map(toPasskey),
      }
    },

    // Passkeys

    async registrationOptions(user: UserRow) {
      const existing = await repo.passkeysOf(user.id)
      if (existing.length >= MAX_PASSKEYS) {
        throw errors.conflict('too_many_passkeys', `An account can have at most ${MAX_PASSKEYS} passkeys.`)
      }
      const options = await generateRegistrationOptions({
        rpName: rp.name,
        rpID: rp.id,
        userName: user.email,
        userID: userHandle(user.id),
        userDisplayName: `${user.firstName} ${user.lastName}`.trim(),
        timeout: CHALLENGE_TTL_S * 1000,
        attestationType: 'none',
        excludeCredentials: existing.map((p) => ({ id: p.credentialId, transports: p.transports })),
        // Discoverable, so the passkey also works as a passwordless login.
        authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
      })
      await repo.saveChallenge(options.challenge, 'register', user.id, CHALLENGE_TTL_S)
      return options
    },

    async addPasskey(user: UserRow, response: RegistrationResponseJSON, name?: string) {
      let verification: Awaited<ReturnType<typeof verifyRegistrationResponse>>
      try {
        verification = await verifyRegistrationResponse({
          response,
          expectedChallenge: (c) => repo.consumeChallenge(c, 'register', user.id),
          expectedOrigin: rp.origins,
          expectedRPID: rp.id,
          requireUserVerification: false,
        })
      } catch {
        throw errors.badRequest('passkey_rejected', 'The passkey could not be verified; start again with new options.')
      }
      if (!verification.verified) {
        throw errors.badRequest('passkey_rejected', 'The passkey could not be verified; start again with new options.')
      }
      const info = verification.registrationInfo
      const count = await repo.countPasskeys(user.id)
      const row = await db.transaction(async (tx) => {
        const created = await repo.addPasskey(
          {
            userId: user.id,
            credentialId: info.credential.id,
            publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
            counter: info.credential.counter,
            transports: info.credential.transports ?? [],
            deviceType: info.credentialDeviceType,
            backedUp: info.credentialBackedUp,
            aaguid: info.aaguid,
            name: name ?? `Passkey ${count + 1}`,
          },
          tx,
        )
        if (created) await mailer.enqueue(tx, mfaMails.factorAdded(user.email, `a passkey ("${created.name}")`))
        return created
      })
      if (!row) throw errors.conflict('passkey_exists', 'This passkey is already registered.')
      return toPasskey(row)
    },

    async removePasskey(user: Pick<UserRow, 'id' | 'email'>, id: string) {
      await db.transaction(async (tx) => {
        const row = await repo.deletePasskey(user.id, id, tx)
        if (!row) throw errors.notFound('No such passkey.')
        const totp = await repo.totp(user.id, tx)
        if (!totp?.confirmedAt && (await repo.passkeysOf(user.id, tx)).length === 0) {
          await repo.deleteRecoveryCodes(user.id, tx)
        }
        await mailer.enqueue(tx, mfaMails.factorRemoved(user.email, `the passkey "${row.name}"`))
      })
    },

    repo,
    assertionOptions,

    // The second step of a login

    /** Assertion options for a login waiting for its second factor (the mfa_token's account's passkeys). */
    async loginPasskeyOptions(request: FastifyRequest, mfaToken: string) {
      const pending = await repo.liveLoginToken(sha256(mfaToken), request.clientApp?.id ?? null)
      if (!pending)
        throw errors.unauthorized('invalid_mfa_token', 'This mfa_token is wrong, used or expired; log in again.')
      if ((await repo.countPasskeys(pending.userId)) === 0) {
        throw errors.badRequest('no_passkey', 'This account has no passkey; use a code.')
      }
      return assertionOptions('second_factor', pending.userId)
    },

    /** `POST /v1/auth/mfa/verify`: the mfa_token and one factor → the session's tokens. */
    async verifyLogin(
      request: FastifyRequest,
      body: { mfa_token: string; code?: string; passkey?: AuthenticationResponseJSON },
    ): Promise<Tokens> {
      const factor = exactlyOne(body)
      const pending = await repo.tryLoginToken(
        sha256(body.mfa_token),
        request.clientApp?.id ?? null,
        MFA_TOKEN_ATTEMPTS,
      )
      if (!pending)
        throw errors.unauthorized('invalid_mfa_token', 'This mfa_token is wrong, used or expired; log in again.')
      const user = await users.findById(pending.userId)
      if (!loginAllowed(user))
        throw errors.unauthorized('invalid_mfa_token', 'This mfa_token is wrong, used or expired; log in again.')
      // The password login's per-account backoff counts failed codes too (login_attempts).
      await auth.throttle(user.email)
      let amr: string[]
      try {
        if (factor === 'code') {
          if (!(await checkCode(user.id, body.code as string))) throw badCode()
          amr = ['otp']
        } else {
          amr = (await checkAssertion('second_factor', user.id, body.passkey as AuthenticationResponseJSON)).amr
        }
      } catch (err) {
        if (err instanceof AppError) {
          await failedSecondStep(request, user)
        }
        throw err
      }
      if (!(await repo.spendLoginToken(pending.userId, pending.id))) {
        throw errors.unauthorized('invalid_mfa_token', 'This mfa_token is wrong, used or expired; log in again.')
      }
      // Admin power only when the login began at the admin login, and the account is still an admin.
      const role = pending.admin && user.role === 'admin' ? 'admin' : 'user'
      return auth.openSession(request, user, { method: 'mfa', amr: ['pwd', ...amr], aal: 2 }, role)
    },

    /**
     * A second-factor code (TOTP or recovery) typed on the OAuth sign-in page after the password: the same
     * backoff as `verifyLogin` (failed codes count in the account's login failures), true once per code.
     */
    async checkLoginCode(request: FastifyRequest, user: UserRow, code: string): Promise<boolean> {
      await auth.throttle(user.email)
      if (await checkCode(user.id, code)) return true
      await failedSecondStep(request, user)
      return false
    },

    /**
     * A passkey as the second step of the OAuth sign-in page, after the password: the same checks and
     * backoff as `verifyLogin` (a failure counts in the account's login failures). Answers the amr.
     */
    async checkLoginPasskey(
      request: FastifyRequest,
      user: UserRow,
      response: AuthenticationResponseJSON,
      boundChallenge?: string,
    ): Promise<string[]> {
      await auth.throttle(user.email)
      try {
        return (await checkAssertion('second_factor', user.id, response, boundChallenge)).amr
      } catch (err) {
        if (err instanceof AppError) {
          await failedSecondStep(request, user)
        }
        throw err
      }
    },

    /** Which second steps a signed-in-by-password account can take: a passkey, a code (TOTP or recovery). */
    async loginFactors(userId: string): Promise<{ passkey: boolean; code: boolean }> {
      const [totp, recovery, passkeys] = [
        await repo.totp(userId),
        await repo.recoveryCodeSummary(userId),
        await repo.countPasskeys(userId),
      ]
      return { passkey: passkeys > 0, code: Boolean(totp?.confirmedAt) || (recovery?.remaining ?? 0) > 0 }
    },

    passkeyAccount,

    /** `POST /v1/auth/passkey/login`: a discoverable credential names and authenticates the account. */
    async passkeyLogin(request: FastifyRequest, response: AuthenticationResponseJSON): Promise<Tokens> {
      const { user, amr, userVerified } = await passkeyAccount(response)
      const sessionAuth: SessionAuth = { method: 'passkey', amr, aal: userVerified ? 2 : 1 }
      return auth.openSession(request, user, sessionAuth, 'user')
    },

    /** `POST /v1/auth/reauthenticate`: proves it is still the user; the session's tokens say so from now on. */
    async reauthenticate(
      request: FastifyRequest,
      body: { password?: string; code?: string; passkey?: AuthenticationResponseJSON },
    ): Promise<Tokens> {
      const which = exactlyOne(body, true)
      const user = await users.findById(request.user.sub)
      if (!loginAllowed(user)) throw errors.unauthorized('session_revoked', 'This session has ended; log in again.')
      await auth.throttle(user.email)
      let amr: string[]
      try {
        if (which === 'password') {
          if (!(await verifyPassword(body.password as string, user.passwordHash))) {
            throw errors.unauthorized('invalid_credentials', 'The password is not right.')
          }
          amr = ['pwd']
        } else if (which === 'code') {
          if (!(await checkCode(user.id, body.code as string))) throw badCode()
          amr = ['otp']
        } else {
          amr = (await checkAssertion('reauthenticate', user.id, body.passkey as AuthenticationResponseJSON)).amr
        }
      } catch (err) {
        if (err instanceof AppError) {
          await failedSecondStep(request, user, 'reauthentication_failed')
        }
        throw err
      }
      const session = await auth.sessions.get(request.user.sub, request.user.sid)
      if (!session || session.revokedAt)
        throw errors.unauthorized('session_revoked', 'This session has ended; log in again.')
      const aal = Math.max(session.aal, amr.some((m) => m !== 'pwd') ? 2 : 1)
      const authTime = new Date()
      const next = randomUUID()
      if (
        !(await auth.sessions.reauthenticated(
          session.userId,
          session.id,
          { amr, aal, authTime },
          session.refreshJti,
          next,
        ))
      ) {
        throw errors.unauthorized('session_revoked', 'This session has ended; log in again.')
      }
      app.sessionCache.invalidate(session.id)
      const role = session.role === 'admin' && user.role === 'admin' ? 'admin' : 'user'
      return auth.issueTokens(
        user,
        session.id,
        next,
        role,
        { method: session.authMethod, amr, aal, authTime },
        authTime,
      )
    },

    /** Admin reset: every factor of the account goes; the owner is told. */
    async resetFactors(
      userId: string,
      inTx: (tx: DbOrTx, removed: { totp: number; passkeys: number }) => Promise<void>,
    ) {
      return db.transaction(async (tx) => {
        const user = await users.findById(userId, tx)
        if (!user) return null
        const removed = await repo.deleteAllFactors(user.id, tx)
        await mailer.enqueue(tx, mfaMails.factorsReset(user.email))
        await inTx(tx, removed)
        return removed
      })
    },
  }
}

function exactlyOne(body: { password?: unknown; code?: unknown; passkey?: unknown }, passwordAllowed = false) {
  const given = (['password', 'code', 'passkey'] as const).filter((k) => body[k] !== undefined)
  if (given.length !== 1 || (given[0] === 'password' && !passwordAllowed)) {
    const fields = passwordAllowed ? 'password, code or passkey' : 'code or passkey'
    throw errors.validation([{ field: 'body', problem: `needs exactly one of ${fields}` }])
  }
  return given[0]
}

export function toPasskey(p: PasskeyRow) {
  return {
    id: p.id,
    name: p.name,
    created: p.createdAt.toISOString(),
    last_used: p.lastUsedAt?.toISOString() ?? null,
    device_type: p.deviceType,
    backed_up: p.backedUp,
    transports: p.transports,
    clone_warning: p.cloneWarningAt !== null,
  }
}

export type MfaService = ReturnType<typeof createMfaService>
