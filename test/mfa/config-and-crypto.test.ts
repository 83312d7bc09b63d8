import t from 'tap'
import { ConfigError, loadConfig } from '../../plugins/config.ts'
import {
  decryptSecret,
  encryptSecret,
  hashRecoveryCode,
  mfaKeys,
  newRecoveryCode,
  normaliseRecoveryCode,
} from '../../routes/mfa/crypto.ts'

const SECRET = 'j'.repeat(40)

t.test('MFA settings: defaults from NODE_ENV and PUBLIC_URL, bad origins named', async (t) => {
  const prod = loadConfig({
    NODE_ENV: 'production',
    JWT_SECRET: SECRET,
    DATABASE_URL: 'postgres://x@h/db',
    MAIL_TRANSPORT: 'log',
  })
  t.equal(prod.ADMIN_MFA_REQUIRED, true, 'admins need a second factor in production by default')
  t.equal(prod.REAUTH_WINDOW_S, 600)
  const dev = loadConfig({ NODE_ENV: 'test', JWT_SECRET: SECRET, PUBLIC_URL: 'https://api.nowatch.example:8443' })
  t.equal(dev.ADMIN_MFA_REQUIRED, false)
  t.equal(dev.WEBAUTHN_RP_ID, 'api.nowatch.example')
  t.same(dev.webauthnOrigins, ['https://api.nowatch.example:8443'])
  t.equal(dev.WEBAUTHN_RP_NAME, 'NOWATCH')
  const set = loadConfig({
    NODE_ENV: 'production',
    JWT_SECRET: SECRET,
    DATABASE_URL: 'postgres://x@h/db',
    ADMIN_MFA_REQUIRED: 'false',
    MAIL_TRANSPORT: 'log',
    WEBAUTHN_RP_ID: 'nowatch.example',
    WEBAUTHN_ORIGINS: 'https://app.nowatch.example, https://nowatch.example',
  })
  t.equal(set.ADMIN_MFA_REQUIRED, false)
  t.equal(set.WEBAUTHN_RP_ID, 'nowatch.example')
  t.same(set.webauthnOrigins, ['https://app.nowatch.example', 'https://nowatch.example'])
  t.throws(
    () => loadConfig({ JWT_SECRET: SECRET, WEBAUTHN_ORIGINS: 'https://ok.example,ftp://nope/' }),
    new ConfigError(
      'Invalid configuration:\n  WEBAUTHN_ORIGINS: "ftp://nope/" is not an origin (scheme://host[:port])',
    ),
  )
  t.throws(() => loadConfig({ JWT_SECRET: SECRET, REAUTH_WINDOW_S: '5' }), /REAUTH_WINDOW_S: must be >= 30/)
  t.throws(() => loadConfig({ JWT_SECRET: SECRET, MFA_ENCRYPTION_KEY: 'short' }), /MFA_ENCRYPTION_KEY/)
})

t.test(
  'TOTP secrets at rest: AES-256-GCM bound to the account, keys from MFA_ENCRYPTION_KEY or JWT_SECRET',
  async (t) => {
    const keys = mfaKeys({ JWT_SECRET: SECRET })
    const stored = encryptSecret(keys.totp, 'JBSWY3DPEHPK3PXP', 'user-a')
    t.match(stored, /^v1\.[\w-]+\.[\w-]+\.[\w-]+$/)
    t.notOk(stored.includes('JBSWY3DPEHPK3PXP'))
    t.not(encryptSecret(keys.totp, 'JBSWY3DPEHPK3PXP', 'user-a'), stored, 'a fresh IV each time')
    t.equal(decryptSecret(keys.totp, stored, 'user-a'), 'JBSWY3DPEHPK3PXP')
    t.throws(() => decryptSecret(keys.totp, stored, 'user-b'), 'copied onto another account it does not decrypt')
    const other = mfaKeys({ JWT_SECRET: SECRET, MFA_ENCRYPTION_KEY: 'k'.repeat(40) })
    t.throws(() => decryptSecret(other.totp, stored, 'user-a'), 'another key does not decrypt')
    t.notSame(keys.totp, keys.recovery, 'one key per purpose')
    const parts = stored.split('.')
    const body = Buffer.from(parts[3], 'base64url')
    body[0] ^= 1
    const tampered = [...parts.slice(0, 3), body.toString('base64url')].join('.')
    t.throws(() => decryptSecret(keys.totp, tampered, 'user-a'), 'tampering is detected')
  },
)

t.test('recovery codes: 50 random bits, typed loosely, hashed with a key', async (t) => {
  const codes = new Set(Array.from({ length: 200 }, newRecoveryCode))
  t.equal(codes.size, 200)
  const [code] = codes
  const keys = mfaKeys({ JWT_SECRET: SECRET })
  t.equal(hashRecoveryCode(keys.recovery, code), hashRecoveryCode(keys.recovery, ` ${code.toLowerCase()} `))
  t.equal(normaliseRecoveryCode('abcde-fghio'), 'ABCDEFGH10')
  t.not(hashRecoveryCode(keys.recovery, code), hashRecoveryCode(mfaKeys({ JWT_SECRET: 'x'.repeat(40) }).recovery, code))
})
