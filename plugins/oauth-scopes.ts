import type { ChangeType } from './changes.ts'

/**
 * The OAuth 2.0 scopes a third-party app may ask for, by data domain and direction, each with the words
 * the consent page shows. A data route declares the one it needs in `config.oauthScope` (see
 * plugins/oauth-bearer.ts); a route without one is closed to third-party tokens (auth, account,
 * sharing, admin, firmware admin …). `openid` and `offline_access` are protocol scopes: who you are
 * (OpenID Connect), and a refresh token with the code exchange.
 */
export const OAUTH_SCOPES = {
  'profile:read': 'See your profile: name, e-mail address, date of birth, sex, height, weight and time zone',
  'measurements:read':
    'Read your health measurements: heart rate, heart rate variability, temperature, SpO₂, breathing, steps, energy, stress and sleep stages',
  'measurements:write': 'Add health measurements to your account, and delete a time range of them',
  'journal:read': 'Read your journal: check-ins, day feedback, activities and intentions',
  'statistics:read': 'Read your daily, weekly and monthly statistics',
  'sleep:read': 'Read your sleep sessions and daily sleep',
  'insights:read': 'Read the insights computed from your data, with your feedback and reflections',
  offline_access: 'Keep this access while you are not using the app, until you remove it',
  openid: 'Know which NOWATCH account you are (an identifier, nothing more)',
} as const

/**
 * The public OAuth client of Swagger UI at /docs (registered at boot, redirect URI
 * `PUBLIC_URL/docs/static/oauth2-redirect.html`): an integrator tries the API from the docs page.
 */
export const DOCS_CLIENT_ID = 'nwc_nowatchApiDocsSwaggerU'

export type OAuthScope = keyof typeof OAUTH_SCOPES

/** The scopes that open data routes (all but the protocol scopes). */
export const DATA_SCOPES = Object.keys(OAUTH_SCOPES).filter(
  (s) => s !== 'openid' && s !== 'offline_access',
) as OAuthScope[]

export const isOAuthScope = (s: string): s is OAuthScope => Object.hasOwn(OAUTH_SCOPES, s)

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The OAuth scope a third-party access token needs on this route, or a list of which it needs any one
     * (`GET /v1/sync`: each scope opens part of the feed; the handler reads `request.oauth.scopes`);
     * absent = closed to third-party tokens.
     */
    oauthScope?: OAuthScope | readonly OAuthScope[]
  }
}

/**
 * The OAuth scope that lets a third-party app see each kind of change (GET /v1/sync, webhooks of its
 * users' changes): the read scope of the routes that show that data. Shares are the owner's alone.
 */
export const CHANGE_TYPE_SCOPES: Record<ChangeType, OAuthScope | null> = {
  measurements: 'measurements:read',
  checkin: 'journal:read',
  day_feedback: 'journal:read',
  activity: 'journal:read',
  intention: 'journal:read',
  insight: 'insights:read',
  profile: 'profile:read',
  share: null,
}
