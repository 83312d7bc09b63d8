// The passkey step of the OAuth sign-in pages (served by routes/oauth/passkey-script.ts). Each
// `form[data-passkey-options]` stays hidden unless this browser can do WebAuthn; its button asks this
// server for the options (a challenge bound to this sign-in), runs navigator.credentials.get() and posts
// the assertion, serialised as WebAuthn's toJSON() does, in the form's `assertion` field with its CSRF
// token. The glue is written out (base64url <-> ArrayBuffer) rather than PublicKeyCredential's JSON
// helpers, which older browsers lack.
;(() => {
  const toBytes = (b64url) => {
    const b64 = b64url.replace(/-/g, '+').replace(/_/g, '/')
    const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4))
    return Uint8Array.from(bin, (c) => c.charCodeAt(0))
  }
  const toB64url = (buffer) => {
    let bin = ''
    for (const byte of new Uint8Array(buffer)) bin += String.fromCharCode(byte)
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
  }

  const usable = typeof window.PublicKeyCredential === 'function' && navigator.credentials
  // The note for a browser that cannot use a passkey (shown without script too) goes when it can.
  if (usable) for (const note of document.querySelectorAll('[data-passkey-unsupported]')) note.hidden = true
  for (const form of document.querySelectorAll('form[data-passkey-options]')) {
    if (!usable) continue
    form.hidden = false
    const status = form.querySelector('[data-passkey-status]')
    const button = form.querySelector('button')
    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      button.disabled = true
      status.hidden = true
      try {
        const answer = await fetch(form.dataset.passkeyOptions, {
          method: 'POST',
          credentials: 'same-origin',
          body: new URLSearchParams({ csrf: form.elements.csrf.value }),
        })
        if (!answer.ok) throw new Error(`options: ${answer.status}`)
        const options = await answer.json()
        const credential = await navigator.credentials.get({
          publicKey: {
            challenge: toBytes(options.challenge),
            rpId: options.rpId,
            timeout: options.timeout,
            userVerification: options.userVerification,
            allowCredentials: (options.allowCredentials ?? []).map((c) => ({
              type: c.type,
              id: toBytes(c.id),
              transports: c.transports,
            })),
          },
        })
        const r = credential.response
        form.elements.assertion.value = JSON.stringify({
          id: credential.id,
          rawId: toB64url(credential.rawId),
          type: credential.type,
          authenticatorAttachment: credential.authenticatorAttachment ?? undefined,
          clientExtensionResults: credential.getClientExtensionResults(),
          response: {
            clientDataJSON: toB64url(r.clientDataJSON),
            authenticatorData: toB64url(r.authenticatorData),
            signature: toB64url(r.signature),
            userHandle: r.userHandle ? toB64url(r.userHandle) : undefined,
          },
        })
        form.submit()
      } catch {
        status.hidden = false
        button.disabled = false
      }
    })
  }
})()
