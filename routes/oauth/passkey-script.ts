import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'

/**
 * The one script of the OAuth pages (assets/passkey.js: the WebAuthn ceremony of "Sign in with a passkey"
 * and "Use a passkey"), served by this server. Its URL names its content hash, so it is cached for a year
 * (`immutable`) and a new version is a new URL; the pages load it by `<script src>` with its Subresource
 * Integrity hash, under a CSP of `script-src 'self'` — no inline script, nothing from elsewhere.
 */
const SOURCE = readFileSync(new URL('./assets/passkey.js', import.meta.url), 'utf8')
const INTEGRITY = `sha384-${createHash('sha384').update(SOURCE).digest('base64')}`
export const PASSKEY_SCRIPT_URL = `/oauth/assets/passkey.${createHash('sha256').update(SOURCE).digest('hex').slice(0, 16)}.js`

/** The page's `<script>` element (deferred: it runs once the forms it enhances are parsed). */
export const passkeyScriptTag = () => `<script src="${PASSKEY_SCRIPT_URL}" integrity="${INTEGRITY}" defer></script>`

export function passkeyScriptRoute(app: FastifyInstance) {
  app.get(
    PASSKEY_SCRIPT_URL,
    {
      config: { cacheControl: 'public, max-age=31536000, immutable' },
      schema: { hide: true, response: { 200: { type: 'string' } } },
    },
    async function passkeyScript(_request, reply) {
      return reply.type('text/javascript; charset=utf-8').header('x-content-type-options', 'nosniff').send(SOURCE)
    },
  )
}
