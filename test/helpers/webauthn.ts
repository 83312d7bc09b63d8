import { type KeyObject, createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto'
import type { FastifyInstance } from 'fastify'

/**
 * A software WebAuthn authenticator (WebAuthn L2 §6.1, §6.5; COSE per RFC 9053), for tests that need
 * passkeys without a browser: ES256 keys, `none` attestation, discoverable credentials, a signature
 * counter. It answers the server's options the way navigator.credentials.create()/get() and toJSON()
 * do, for one RP ID and origin. The browser tests use Chromium's CDP virtual authenticator instead.
 */
export class SoftwareAuthenticator {
  readonly credentials: { id: Buffer; key: KeyObject; userHandle: Buffer; counter: number }[] = []
  constructor(
    readonly rpId: string,
    readonly origin: string,
  ) {}

  static forApp(app: FastifyInstance) {
    return new SoftwareAuthenticator(app.config.WEBAUTHN_RP_ID, app.config.webauthnOrigins[0])
  }

  private clientData(type: 'webauthn.create' | 'webauthn.get', challenge: string) {
    return Buffer.from(JSON.stringify({ type, challenge, origin: this.origin, crossOrigin: false }))
  }

  /** Answers registration options (`POST /v1/users/me/passkeys/options`) with a new credential. */
  create(options: { challenge: string; user: { id: string } }) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const id = randomBytes(32)
    const jwk = publicKey.export({ format: 'jwk' })
    const x = Buffer.from(jwk.x as string, 'base64url')
    const y = Buffer.from(jwk.y as string, 'base64url')
    // COSE_Key {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y} in CBOR.
    const cose = Buffer.concat([Buffer.from('a5010203262001215820', 'hex'), x, Buffer.from('225820', 'hex'), y])
    const authData = Buffer.concat([
      createHash('sha256').update(this.rpId).digest(),
      Buffer.from([0x45]), // user present, user verified, attested credential data
      Buffer.alloc(4), // counter 0
      Buffer.alloc(16), // AAGUID: none
      Buffer.from([0, id.length]),
      id,
      cose,
    ])
    // {"fmt": "none", "attStmt": {}, "authData": <bytes>} in CBOR.
    const attestation = Buffer.concat([
      Buffer.from('a363666d74646e6f6e656761747453746d74a068617574684461746158', 'hex'),
      Buffer.from([authData.length]),
      authData,
    ])
    this.credentials.push({ id, key: privateKey, userHandle: Buffer.from(options.user.id, 'base64url'), counter: 0 })
    return {
      id: id.toString('base64url'),
      rawId: id.toString('base64url'),
      type: 'public-key' as const,
      response: {
        clientDataJSON: this.clientData('webauthn.create', options.challenge).toString('base64url'),
        attestationObject: attestation.toString('base64url'),
        transports: ['internal'],
      },
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
    }
  }

  /**
   * Answers assertion options with a credential: one the options allow, or (discoverable) any of this
   * authenticator's; `credential` picks one by index regardless (to present a credential the server did
   * not ask for). `challenge` overrides the one signed.
   */
  get(options: { challenge: string; allowCredentials?: { id: string }[] }, opts: { credential?: number } = {}) {
    const allowed = options.allowCredentials?.map((c) => c.id) ?? []
    const credential =
      opts.credential !== undefined
        ? this.credentials[opts.credential]
        : this.credentials.find((c) => allowed.length === 0 || allowed.includes(c.id.toString('base64url')))
    if (!credential) throw new Error('no credential for these options')
    credential.counter += 1
    const counter = Buffer.alloc(4)
    counter.writeUInt32BE(credential.counter)
    const authData = Buffer.concat([
      createHash('sha256').update(this.rpId).digest(),
      Buffer.from([0x05]), // user present, user verified
      counter,
    ])
    const clientData = this.clientData('webauthn.get', options.challenge)
    const signature = sign(
      'sha256',
      Buffer.concat([authData, createHash('sha256').update(clientData).digest()]),
      credential.key,
    )
    return {
      id: credential.id.toString('base64url'),
      rawId: credential.id.toString('base64url'),
      type: 'public-key' as const,
      response: {
        clientDataJSON: clientData.toString('base64url'),
        authenticatorData: authData.toString('base64url'),
        signature: signature.toString('base64url'),
        userHandle: credential.userHandle.toString('base64url'),
      },
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
    }
  }
}

/** Registers a passkey of `authenticator` for the bearer through the API; answers the passkey's id. */
export async function registerPasskey(
  app: FastifyInstance,
  headers: Record<string, string>,
  authenticator: SoftwareAuthenticator,
): Promise<string> {
  const options = await app.inject({ method: 'POST', url: '/v1/users/me/passkeys/options', headers })
  if (options.statusCode !== 200) throw new Error(`passkey options: ${options.statusCode} ${options.body}`)
  const added = await app.inject({
    method: 'POST',
    url: '/v1/users/me/passkeys',
    headers,
    payload: { response: authenticator.create(options.json()) },
  })
  if (added.statusCode !== 201) throw new Error(`passkey: ${added.statusCode} ${added.body}`)
  return (added.json() as { id: string }).id
}
