import { createHash } from 'node:crypto'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../plugins/config.ts'
import { errors } from '../plugins/errors.ts'

/**
 * The small server-rendered pages behind the links in e-mails. Mail scanners and link previews fetch
 * every link (HEAD and GET), so a link that changes something answers a page that says what would
 * happen, and only its button — a POST — does it. The page loads nothing from elsewhere and runs no
 * script; its CSP allows its own inline style (by hash) and a form posting to this server, and the
 * redirect after it to the app (`form-action` covers redirects).
 */

const STYLE =
  'body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222;line-height:1.5}' +
  'h1{font-size:1.4rem}button{font-size:1rem;padding:.6rem 1.4rem;border:0;border-radius:.4rem;background:#1d4ed8;color:#fff;cursor:pointer}' +
  '.muted{color:#666;font-size:.9rem}'
const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text for HTML content or a quoted attribute: every character that could end either is escaped. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c])
}

/** Where the app lives, as a CSP source: an https origin, or a custom scheme such as `nowatch:`. */
function appSource(appUrl: string): string {
  const url = new URL(appUrl)
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : url.protocol
}

export function pageCsp(config: Pick<Config, 'APP_URL'>): string {
  return [
    "default-src 'none'",
    `style-src ${STYLE_HASH}`,
    `form-action 'self' ${appSource(config.APP_URL)}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ')
}

export interface PageContent {
  title: string
  /** Paragraphs, already escaped (build them with escapeHtml). */
  paragraphs: string[]
  /** The confirming form: posts to `action` with these hidden fields. Absent on a page that only informs. */
  form?: { action: string; fields?: Record<string, string>; button: string }
}

export function renderPage(page: PageContent): string {
  const form = page.form
    ? `<form method="post" action="${escapeHtml(page.form.action)}">${Object.entries(page.form.fields ?? {})
        .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
        .join('')}<button type="submit">${escapeHtml(page.form.button)}</button></form>`
    : ''
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex"><title>${escapeHtml(page.title)}</title><style>${STYLE}</style></head><body><h1>${escapeHtml(page.title)}</h1>${page.paragraphs.map((p) => `<p>${p}</p>`).join('')}${form}<p class="muted">NOWATCH</p></body></html>`
}

/** Sends a page with its own headers: strict CSP, never cached, never sent as a referrer (the URL holds a code). */
export function sendPage(reply: FastifyReply, config: Pick<Config, 'APP_URL'>, status: number, page: PageContent) {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('content-security-policy', pageCsp(config))
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .header('x-robots-tag', 'noindex')
    .send(renderPage(page))
}

/** A browser (Accept: text/html) gets a page for a dead link; API clients keep the JSON error. */
export function wantsHtml(request: FastifyRequest): boolean {
  return /\btext\/html\b/.test(request.headers.accept ?? '')
}

export function deadLink(request: FastifyRequest, reply: FastifyReply, config: Pick<Config, 'APP_URL'>, what: string) {
  if (!wantsHtml(request)) throw errors.notFound(`This ${what} is not valid or has expired.`)
  return sendPage(reply, config, 404, {
    title: `This ${what} is not valid`,
    paragraphs: [
      escapeHtml('It was used already, withdrawn, or it has expired. Open the NOWATCH app to see where things stand.'),
    ],
  })
}

/** The 200 answer of a confirmation page, for the route schema (and so openapi.yaml). */
export const PageResponseSchema = {
  description:
    "A small HTML page (no script, nothing loaded from elsewhere, `Content-Security-Policy: default-src 'none'`) that says what the link does, with a button that POSTs the confirmation. A HEAD or GET changes nothing.",
  content: { 'text/html': { schema: Type.String() } },
}

/**
 * HTML forms post `application/x-www-form-urlencoded`. Parsed only in the plugin that calls this (the
 * confirmation routes), into an object of strings that the route's TypeBox schema then validates; a
 * field sent twice is refused.
 */
export function acceptHtmlForms(app: FastifyInstance) {
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 4096 },
    function parseForm(_request, body, done) {
      const fields = new Map<string, string>()
      for (const [k, v] of new URLSearchParams(body as string)) {
        if (fields.has(k)) {
          done(errors.badRequest('validation_failed', 'A field was sent twice.'), undefined)
          return
        }
        fields.set(k, v)
      }
      // fromEntries defines own properties: a field named __proto__ stays a plain field.
      done(null, Object.fromEntries(fields))
    },
  )
}
