import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto'
import type { Config } from '../../plugins/config.ts'

/**
 * Keys of the MFA domain, derived once from config with HKDF-SHA256 (RFC 5869), one per purpose:
 * from MFA_ENCRYPTION_KEY when it is set, else from JWT_SECRET. Setting MFA_ENCRYPTION_KEY keeps
 * the TOTP secrets readable when JWT_SECRET is rotated (rotating MFA_ENCRYPTION_KEY itself makes every
 * enrolled TOTP factor unreadable: users would enrol again or use a recovery code / passkey).
 */
export function mfaKeys(config: Pick<Config, 'MFA_ENCRYPTION_KEY' | 'JWT_SECRET'>) {
  const ikm = Buffer.from(config.MFA_ENCRYPTION_KEY ?? config.JWT_SECRET, 'utf8')
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', ikm, 'nowatch-mfa', info, 32))
  return { totp: derive('totp-secret-aes-256-gcm-v1'), recovery: derive('recovery-code-hmac-v1') }
}

const VERSION = 'v1'

/**
 * AES-256-GCM with a random 96-bit IV; the owner's id is the additional data, so a ciphertext copied
 * onto another account's row does not decrypt. Stored as `v1.<iv>.<tag>.<ciphertext>` (base64url).
 */
export function encryptSecret(key: Buffer, plaintext: string, userId: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from(userId, 'utf8'))
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
  return [VERSION, iv, cipher.getAuthTag(), body]
    .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
    .join('.')
}

export function decryptSecret(key: Buffer, stored: string, userId: string): string {
  const [version, iv, tag, body] = stored.split('.')
  if (version !== VERSION || !iv || !tag || body === undefined) throw new Error('unknown secret format')
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'))
  decipher.setAAD(Buffer.from(userId, 'utf8'))
  decipher.setAuthTag(Buffer.from(tag, 'base64url'))
  return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8')
}

// Crockford's base32 without I, L, O, U: nothing to misread when typed from paper.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/** `XXXXX-XXXXX`: 50 random bits, as many as a strong password and short enough to type. */
export function newRecoveryCode(): string {
  const bytes = randomBytes(10)
  const chars = [...bytes].map((b) => ALPHABET[b & 31])
  return `${chars.slice(0, 5).join('')}-${chars.slice(5).join('')}`
}

/** Case, spaces and dashes do not matter; O/I/L are read as 0/1/1 as Crockford's base32 says. */
export function normaliseRecoveryCode(code: string): string {
  return code.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1')
}

/** Codes carry 50 random bits, so a keyed fast hash is enough (no dictionary to try against it). */
export function hashRecoveryCode(key: Buffer, code: string): string {
  return createHmac('sha256', key).update(normaliseRecoveryCode(code)).digest('base64url')
}

export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** A bearer secret handed out once (mfa_token); only its SHA-256 is stored. */
export function newToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url')
  return { token, hash: sha256(token) }
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('base64url')
}
