import { createHmac } from 'node:crypto'
import { dictionary } from '@zxcvbn-ts/language-common'
import bcrypt from 'bcrypt'
import type { ErrorDetail } from '../../plugins/errors.ts'

/** The special characters of the NOWATCH password policy, exactly as the reference lists them. */
export const PASSWORD_SPECIALS = '^$*.[]{}()?-“!@#%&/,><’:;|_~+'
export const PASSWORD_MIN = 8
export const PASSWORD_MAX = 99

// ~49,000 most common passwords (zxcvbn-ts "passwords-common", offline).
const COMMON = new Set((dictionary as Record<string, string[]>)['passwords-common'].map((p) => p.toLowerCase()))

export function isCommonPassword(password: string): boolean {
  const lower = password.toLowerCase()
  // "Password1!" is "password1" with the policy's decoration: refuse it too.
  const undecorated = lower.replace(/[^\p{L}\p{N}]+$/u, '')
  return COMMON.has(lower) || COMMON.has(undecorated)
}

/** The policy's character rules; length is checked by the route schema. Empty when the password is fine. */
export function passwordProblems(password: string): string[] {
  const problems: string[] = []
  if (!/\p{Ll}/u.test(password)) problems.push('needs at least one lowercase letter')
  if (!/\p{Lu}/u.test(password)) problems.push('needs at least one uppercase letter')
  if (!/[0-9]/.test(password)) problems.push('needs at least one digit (0-9)')
  if (![...password].some((c) => PASSWORD_SPECIALS.includes(c)))
    problems.push(`needs at least one special character from ${PASSWORD_SPECIALS}`)
  const length = [...password].length
  if (length < PASSWORD_MIN || length > PASSWORD_MAX)
    problems.push(`must be ${PASSWORD_MIN} to ${PASSWORD_MAX} characters`)
  return problems
}

/** Every policy problem including commonness, as plain sentences (CLI). */
export function checkNewPasswordPolicy(password: string): string[] {
  const problems = passwordProblems(password)
  if (isCommonPassword(password)) problems.push('is among the most common passwords')
  return problems
}

/** Policy problems as error details for one field; `password_too_common` is reported apart. */
export function policyDetails(field: string, password: string): ErrorDetail[] {
  return passwordProblems(password).map((problem) => ({ field, problem }))
}

/**
 * bcrypt reads only 72 bytes and the policy allows 99 characters of up to 4 bytes: the password is
 * first reduced to an HMAC-SHA256 (44 base64 characters) so that every character counts.
 */
function prehash(password: string): string {
  return createHmac('sha256', 'nowatch-password-v1').update(password.normalize('NFC'), 'utf8').digest('base64')
}

export function hashPassword(password: string, cost: number): Promise<string> {
  return bcrypt.hash(prehash(password), cost)
}

export function verifyPassword(password: string, hash: string): Promise<boolean> {
  return bcrypt.compare(prehash(password), hash)
}

export function needsRehash(hash: string, cost: number): boolean {
  return bcrypt.getRounds(hash) !== cost
}

const dummyHashes = new Map<number, Promise<string>>()
/** A hash to compare against when the email is unknown, so both answers cost the same bcrypt work. */
export function dummyHash(cost: number): Promise<string> {
  let h = dummyHashes.get(cost)
  if (!h) {
    h = hashPassword('dummy password for timing equality', cost)
    dummyHashes.set(cost, h)
  }
  return h
}
