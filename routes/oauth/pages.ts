import { createHash } from 'node:crypto'
import { OAUTH_SCOPES, isOAuthScope } from '../../plugins/oauth-scopes.ts'
import { escapeHtml } from '../confirm-page.ts'
import { passkeyScriptTag } from './passkey-script.ts'

/**
 * The OAuth server's own pages: sign-in, consent, the device code pages and errors. Server-rendered,
 * loading nothing from elsewhere and running no script; the CSP allows the inline style (by hash), forms
 * posting to this server, and — for the forms whose answer redirects to the app — the app's redirect
 * URI (`form-action` also covers the redirects after a form). Sized for a phone screen first.
 */

const STYLE =
  '*{box-sizing:border-box}body{font-family:system-ui,-apple-system,sans-serif;max-width:28rem;margin:0 auto;padding:1.5rem 1rem;color:#1f2328;line-height:1.5;font-size:1rem}' +
  'h1{font-size:1.35rem;margin:.2rem 0 1rem}label{display:block;margin:.8rem 0 .3rem;font-weight:600}' +
  'input[type=email],input[type=password],input[type=text]{width:100%;font-size:1.05rem;padding:.7rem;border:1px solid #8c959f;border-radius:.4rem}' +
  'button{font-size:1rem;padding:.75rem 1.2rem;border:0;border-radius:.4rem;background:#1d4ed8;color:#fff;cursor:pointer;width:100%;margin-top:1rem}' +
  'button.secondary{background:#eaeef2;color:#1f2328}.error{background:#ffebe9;border:1px solid #ff8182;padding:.6rem .8rem;border-radius:.4rem}' +
  'ul.scopes{list-style:none;padding:0;margin:0}ul.scopes li{padding:.6rem 0;border-bottom:1px solid #d0d7de}' +
  'ul.scopes label{display:flex;gap:.7rem;align-items:flex-start;font-weight:400;margin:0}ul.scopes input{width:1.3rem;height:1.3rem;flex:none;margin-top:.15rem}' +
  '.scope-name{font-family:ui-monospace,monospace;font-size:.8rem;color:#57606a;display:block}.muted{color:#57606a;font-size:.9rem}' +
  'code.user-code{font-size:1.6rem;letter-spacing:.1rem}'
const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`

/** A CSP source for where a form's answer may redirect: an http(s) origin, or a custom scheme (`com.example.app:`). */
export function redirectSource(uri: string | undefined): string {
  if (!uri) return ''
  try {
    const url = new URL(uri)
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : url.protocol
  } catch {
    return ''
  }
}

/**
 * The pages' CSP. `script`: the sign-in pages' passkey step, which loads our one script (same origin,
 * integrity-checked) and fetches its WebAuthn options from this server; never inline script.
 */
export function pageCsp(redirectTo?: string, script = false): string {
  return [
    "default-src 'none'",
    `style-src ${STYLE_HASH}`,
    ...(script ? ["script-src 'self'", "connect-src 'self'"] : []),
    `form-action 'self'${redirectTo ? ` ${redirectSource(redirectTo)}` : ''}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ')
}

function layout(title: string, body: string, script = false): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex"><meta name="referrer" content="same-origin"><title>${escapeHtml(title)} · NOWATCH</title><style>${STYLE}</style>${script ? passkeyScriptTag() : ''}</head><body>${body}<p class="muted">NOWATCH</p></body></html>`
}

const hidden = (fields: Record<string, string>) =>
  Object.entries(fields)
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('')

/** Where a passkey form posts its assertion, and where its script asks for the WebAuthn options. */
export interface PasskeyActions {
  action: string
  optionsAction: string
}

/**
 * A passkey button: hidden until the script finds WebAuthn in this browser (without script the page is
 * the password or code form alone). The script fills `assertion` and posts the form with its CSRF token.
 */
function passkeyForm(p: PasskeyActions & { csrf: string; label: string; secondary: boolean; failed: string }) {
  return (
    `<form method="post" action="${escapeHtml(p.action)}" data-passkey-options="${escapeHtml(p.optionsAction)}" hidden>` +
    `${hidden({ csrf: p.csrf, assertion: '' })}` +
    `<button type="submit"${p.secondary ? ' class="secondary"' : ''}>${escapeHtml(p.label)}</button>` +
    `<p class="error" role="alert" data-passkey-status hidden>${escapeHtml(p.failed)}</p></form>`
  )
}

export function signInPage(p: {
  action: string
  csrf: string
  clientName: string
  email?: string
  error?: string
  /** Passwordless sign-in with a discoverable passkey. */
  passkey?: PasskeyActions
}) {
  return layout(
    'Sign in',
    `<h1>Sign in to NOWATCH</h1><p><strong>${escapeHtml(p.clientName)}</strong> wants to connect to your NOWATCH account.</p>` +
      (p.error ? `<p class="error" role="alert">${escapeHtml(p.error)}</p>` : '') +
      `<form method="post" action="${escapeHtml(p.action)}">${hidden({ csrf: p.csrf })}` +
      `<label for="email">E-mail</label><input id="email" type="email" name="email" autocomplete="username" required value="${escapeHtml(p.email ?? '')}">` +
      '<label for="password">Password</label><input id="password" type="password" name="password" autocomplete="current-password" required>' +
      '<button type="submit">Sign in</button></form>' +
      (p.passkey
        ? passkeyForm({
            ...p.passkey,
            csrf: p.csrf,
            label: 'Sign in with a passkey',
            secondary: true,
            failed: 'The passkey did not work (or was cancelled). Try again, or use your password.',
          })
        : ''),
    Boolean(p.passkey),
  )
}

export function secondFactorPage(p: {
  action: string
  csrf: string
  clientName: string
  error?: string
  /** The account has a TOTP app or recovery codes left. */
  code: boolean
  /** The account has passkeys. */
  passkey?: PasskeyActions
}) {
  const ways = [
    p.passkey ? 'use your passkey' : '',
    p.code ? 'enter the code of your authenticator app, or a recovery code' : '',
  ]
    .filter(Boolean)
    .join(', or ')
  return layout(
    'Second factor',
    `<h1>Your second factor</h1><p>To connect <strong>${escapeHtml(p.clientName)}</strong>, ${escapeHtml(ways)}.</p>` +
      (p.error ? `<p class="error" role="alert">${escapeHtml(p.error)}</p>` : '') +
      (p.passkey
        ? passkeyForm({
            ...p.passkey,
            csrf: p.csrf,
            label: 'Use a passkey',
            secondary: false,
            failed: 'The passkey did not work (or was cancelled). Try again.',
          }) +
          (p.code
            ? ''
            : '<p class="error" data-passkey-unsupported>This account’s second factor is a passkey: use a browser that supports passkeys, with JavaScript on.</p>')
        : '') +
      (p.code
        ? `<form method="post" action="${escapeHtml(p.action)}">${hidden({ csrf: p.csrf })}` +
          '<label for="code">Code</label><input id="code" type="text" name="code" inputmode="text" autocomplete="one-time-code" required>' +
          `<button type="submit"${p.passkey ? ' class="secondary"' : ''}>Continue</button></form>`
        : ''),
    Boolean(p.passkey),
  )
}

export function consentPage(p: {
  action: string
  abortAction: string
  csrf: string
  clientName: string
  email: string
  scopes: string[]
  alreadyGranted: string[]
  /** `openid` asked: the app learns the account's identifier (not a choice: it is what signing in means). */
  identity: boolean
}) {
  const items = p.scopes
    .filter(isOAuthScope)
    .map(
      (s) =>
        `<li><label><input type="checkbox" name="scope" value="${escapeHtml(s)}" checked><span>${escapeHtml(OAUTH_SCOPES[s])}<span class="scope-name">${escapeHtml(s)}</span></span></label></li>`,
    )
    .join('')
  const kept = p.alreadyGranted.length
    ? `<p class="muted">Already allowed: ${p.alreadyGranted
        .filter(isOAuthScope)
        .map((s) => escapeHtml(OAUTH_SCOPES[s]))
        .join('; ')}.</p>`
    : ''
  return layout(
    'Allow access',
    `<h1>Allow ${escapeHtml(p.clientName)}?</h1><p>Signed in as <strong>${escapeHtml(p.email)}</strong>. <strong>${escapeHtml(p.clientName)}</strong> asks to:</p>` +
      `<form method="post" action="${escapeHtml(p.action)}">${hidden({ csrf: p.csrf })}<ul class="scopes">${items}</ul>${kept}` +
      (p.identity
        ? '<p class="muted">It will also know which NOWATCH account is yours (an identifier, nothing more).</p>'
        : '') +
      '<p class="muted">Untick what you do not want to share. You can remove this access at any time in your account.</p>' +
      '<button type="submit">Allow</button></form>' +
      `<form method="post" action="${escapeHtml(p.abortAction)}">${hidden({ csrf: p.csrf })}<button type="submit" class="secondary">Deny</button></form>`,
  )
}

export function messagePage(title: string, text: string) {
  return layout(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p>`)
}

/** The library's own forms (they carry its CSRF token) without their inline event handlers, which the CSP refuses. */
const withoutHandlers = (form: string) => form.replace(/\son[a-z]+="[^"]*"/g, '')

export function deviceInputPage(form: string, error?: string) {
  return layout(
    'Connect a device',
    `<h1>Connect a device</h1><p>Enter the code your device shows.</p>${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}` +
      withoutHandlers(form).replace('placeholder="Enter code"', 'placeholder="XXXX-XXXX" aria-label="Code"') +
      '<button type="submit" form="op.deviceInputForm">Continue</button>',
  )
}

export function deviceConfirmPage(form: string, clientName: string, userCode: string) {
  return layout(
    'Confirm the device',
    `<h1>Connect ${escapeHtml(clientName)}?</h1><p>Check that your device shows this code:</p><p><code class="user-code">${escapeHtml(userCode)}</code></p>` +
      '<p class="muted">If it does not, or you did not start this, choose Cancel.</p>' +
      withoutHandlers(form) +
      '<button type="submit" form="op.deviceConfirmForm">Continue</button>' +
      '<button type="submit" form="op.deviceConfirmForm" value="yes" name="abort" class="secondary">Cancel</button>',
  )
}

export function deviceSuccessPage(clientName: string) {
  return messagePage('Device connected', `${clientName} is connected to your account. You can close this page.`)
}
