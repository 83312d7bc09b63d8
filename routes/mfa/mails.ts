import type { Mail } from '../../plugins/mailer.ts'

const IF_NOT_YOU =
  'If this was not you, reset your password now and contact support: someone may have access to your account.'

/** The MFA domain's e-mails: every change to how the account is protected is told to its owner. */
export const mfaMails = {
  factorAdded(to: string, what: string): Mail {
    return {
      to,
      kind: 'mfa_factor_added',
      subject: 'A second factor was added to your NOWATCH account',
      text: `Hello,\n\nYou added ${what} as a second factor to your NOWATCH account.\n\n${IF_NOT_YOU}\n`,
    }
  },
  factorRemoved(to: string, what: string): Mail {
    return {
      to,
      kind: 'mfa_factor_removed',
      subject: 'A second factor was removed from your NOWATCH account',
      text: `Hello,\n\n${what[0].toUpperCase()}${what.slice(1)} no longer protects your NOWATCH account.\n\n${IF_NOT_YOU}\n`,
    }
  },
  recoveryCodesRegenerated(to: string): Mail {
    return {
      to,
      kind: 'mfa_recovery_codes_regenerated',
      subject: 'New NOWATCH recovery codes',
      text: `Hello,\n\nNew recovery codes were made for your NOWATCH account; the old ones no longer work.\n\n${IF_NOT_YOU}\n`,
    }
  },
  factorsReset(to: string): Mail {
    return {
      to,
      kind: 'mfa_factors_reset',
      subject: 'The second factors of your NOWATCH account were reset',
      text: `Hello,\n\nAn administrator removed every second factor (authenticator app, recovery codes, passkeys) from your NOWATCH account, usually because you asked for it. You can log in with your password and set them up again.\n\n${IF_NOT_YOU}\n`,
    }
  },
  passkeyCloneWarning(to: string, name: string): Mail {
    return {
      to,
      kind: 'mfa_passkey_clone_warning',
      subject: 'One of your NOWATCH passkeys was refused',
      text: `Hello,\n\nYour passkey "${name}" answered in a way that suggests a copy of it is in use elsewhere, so it is no longer accepted. Delete it in the app and register a new one.\n\n${IF_NOT_YOU}\n`,
    }
  },
}
