import { eq } from 'drizzle-orm'
import t from 'tap'
import { webauthnChallenges } from '../../db/schema/index.ts'
import { buildTestApp } from '../helpers/app.ts'
import { freshDatabase } from '../helpers/database.ts'
import { createClient, userWithToken } from '../helpers/fixtures.ts'
import { clientPost } from '../helpers/http.ts'
import { enrolTotp, stepStart, totpAt } from '../helpers/mfa.ts'

// Two app instances on one database, as behind a load balancer: what makes a code single-use and a
// login token single-use lives in the database, so the instances agree even when asked at once.
t.test('two instances: a code, a recovery code and an mfa_token each work once across both', async (t) => {
  const database = await freshDatabase()
  t.teardown(() => database.close())
  const T0 = stepStart(Date.now())
  const clock = () => T0
  const one = await buildTestApp(t, { database, clock })
  const two = await buildTestApp(t, { database, clock })
  const client = await createClient(one)
  const [post1, post2] = [clientPost(one, client.x_auth_token), clientPost(two, client.x_auth_token)]
  const { user, headers } = await userWithToken(one)
  const { secret, recoveryCodes } = await enrolTotp(one, headers, stepStart(T0, -1))

  const tokenOf = async (post: typeof post1) =>
    (await post('/v2/auth/login', { email: user.email, password: user.password })).json().mfa_token as string
  const code = await totpAt(secret, T0)
  const [a, b] = await Promise.all([
    post1('/v1/auth/mfa/verify', { mfa_token: await tokenOf(post1), code }),
    post2('/v1/auth/mfa/verify', { mfa_token: await tokenOf(post2), code }),
  ])
  t.same([a.statusCode, b.statusCode].sort(), [200, 401], 'the same TOTP code at once on both: one wins')

  const [c, d] = await Promise.all([
    post1('/v1/auth/mfa/verify', { mfa_token: await tokenOf(post1), code: recoveryCodes[0] }),
    post2('/v1/auth/mfa/verify', { mfa_token: await tokenOf(post2), code: recoveryCodes[0] }),
  ])
  t.same([c.statusCode, d.statusCode].sort(), [200, 401], 'the same recovery code at once on both: one wins')

  const token = await tokenOf(post1)
  const [e, f] = await Promise.all([
    post1('/v1/auth/mfa/verify', { mfa_token: token, code: recoveryCodes[1] }),
    post2('/v1/auth/mfa/verify', { mfa_token: token, code: recoveryCodes[2] }),
  ])
  t.same([e.statusCode, f.statusCode].sort(), [200, 401], 'one mfa_token on both: one session')
  t.equal([e, f].find((r) => r.statusCode === 401)?.json().error, 'invalid_mfa_token')

  const options = (await post1('/v1/auth/passkey/options', undefined)).json()
  t.match(options, { challenge: String, userVerification: 'required' }, 'a passkey challenge made by one…')
  const spent = await two.inject({
    method: 'POST',
    url: '/v1/auth/passkey/login',
    headers: { 'x-auth-token': client.x_auth_token },
    payload: {
      response: {
        id: 'unknown-credential',
        rawId: 'unknown-credential',
        type: 'public-key',
        response: {
          clientDataJSON: Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge: options.challenge })).toString(
            'base64url',
          ),
          authenticatorData: 'AAAA',
          signature: 'AAAA',
        },
        clientExtensionResults: {},
      },
    },
  })
  t.equal(spent.json().error, 'passkey_rejected', '…is spent by a failed try on the other')
  t.same(await one.db.select().from(webauthnChallenges).where(eq(webauthnChallenges.challenge, options.challenge)), [])
})
