import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError, loadConfig } from '../../plugins/config.ts'

t.test('production refuses to boot without JWT_SECRET, DATABASE_URL and a mail transport, naming each', async (t) => {
  t.throws(() => loadConfig({ NODE_ENV: 'production' }), ConfigError)
  try {
    loadConfig({ NODE_ENV: 'production' })
  } catch (err) {
    t.match((err as Error).message, /JWT_SECRET is required when NODE_ENV=production/)
    t.match((err as Error).message, /DATABASE_URL is required when NODE_ENV=production/)
    t.match((err as Error).message, /SMTP_URL is required when NODE_ENV=production \(or set MAIL_TRANSPORT=log/)
  }
  const ok = loadConfig({
    NODE_ENV: 'production',
    JWT_SECRET: 's'.repeat(40),
    DATABASE_URL: 'postgres://x@localhost/db',
    SMTP_URL: 'smtp://mail.example:587',
  })
  t.equal(ok.JWT_SECRET, 's'.repeat(40))
})

t.test('each bad variable is named with its problem', async (t) => {
  try {
    loadConfig({ PORT: 'abc', BCRYPT_COST: '99', JWT_SECRET: 'short', DATA_DIR: mkdtempSync(join(tmpdir(), 'cfg-')) })
    t.fail('should throw')
  } catch (err) {
    t.ok(err instanceof ConfigError)
    const msg = (err as Error).message
    t.match(msg, /PORT: must be integer/)
    t.match(msg, /BCRYPT_COST: must be <= 15/)
    t.match(msg, /JWT_SECRET: must NOT have fewer than 32 characters/)
  }
})

t.test('defaults, and a development secret generated once and kept in DATA_DIR', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'))
  const a = loadConfig({ DATA_DIR: dir })
  t.equal(a.PORT, 3000)
  t.equal(a.BCRYPT_COST, 12)
  t.equal(a.ACCESS_TOKEN_TTL_S, 3600)
  t.equal(a.MAX_SESSIONS, 30)
  t.equal(a.SESSION_LIMIT_POLICY, 'reject')
  t.ok(a.JWT_SECRET.length >= 32)
  t.equal(readFileSync(join(dir, '.jwt-secret'), 'utf8').trim(), a.JWT_SECRET)
  const b = loadConfig({ DATA_DIR: dir })
  t.equal(b.JWT_SECRET, a.JWT_SECRET, 'the same secret on the next boot')
})

t.test(
  'the refresh reuse window and the client secret overlap: defaults, limits, and the renamed setting',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'))
    const c = loadConfig({ DATA_DIR: dir })
    t.equal(c.REFRESH_REUSE_WINDOW_S, 10, "GoTrue's reuse interval")
    t.equal(c.CLIENT_SECRET_OVERLAP_S, 86400)
    t.throws(
      () => loadConfig({ DATA_DIR: dir, REFRESH_REUSE_WINDOW_S: '301' }),
      /REFRESH_REUSE_WINDOW_S: must be <= 300/,
    )
    t.throws(
      () => loadConfig({ DATA_DIR: dir, CLIENT_SECRET_OVERLAP_S: '-1' }),
      /CLIENT_SECRET_OVERLAP_S: must be >= 0/,
    )
    t.throws(
      () => loadConfig({ DATA_DIR: dir, REFRESH_REUSE_GRACE_S: '30' }),
      /REFRESH_REUSE_GRACE_S was renamed REFRESH_REUSE_WINDOW_S/,
      'the old name is refused by name, not ignored',
    )
  },
)

t.test('a setting that is one of a list names the list', async (t) => {
  t.throws(() => loadConfig({ NODE_ENV: 'staging', SESSION_LIMIT_POLICY: 'lru' }), {
    message:
      'Invalid configuration:\n  NODE_ENV: must be one of development, production, test\n  SESSION_LIMIT_POLICY: must be one of reject, evict_oldest',
  })
})
