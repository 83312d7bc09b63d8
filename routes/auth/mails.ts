import type { Config } from '../../plugins/config.ts'
import type { Mail } from '../../plugins/mailer.ts'

/** The auth domain's e-mails, in one place. */
export const authMails = {
  verification(config: Config, to: string, firstName: string, code: string): Mail {
    const link = `${config.PUBLIC_URL}/v1/auth/verify_email?email=${encodeURIComponent(to)}&code=${code}`
    return {
      to,
      kind: 'email_verification',
      subject: 'Confirm your NOWATCH e-mail address',
      text: `Hello ${firstName},\n\nConfirm your e-mail address by opening this link:\n${link}\n\nor enter this code in the app: ${code}\n\nWithout confirmation the account locks ${config.EMAIL_VERIFICATION_DEADLINE_DAYS} days after registration.\n`,
    }
  },
  registrationAttempt(to: string): Mail {
    return {
      to,
      kind: 'registration_attempt',
      subject: 'Someone tried to register with your e-mail address',
      text: 'Hello,\n\nSomeone tried to create a NOWATCH account with this e-mail address, which already has one. If it was you, log in or reset your password. Otherwise you can ignore this message: nothing changed.\n',
    }
  },
  passwordReset(to: string, code: string, ttlMinutes: number): Mail {
    return {
      to,
      kind: 'password_reset',
      subject: 'Your NOWATCH password reset code',
      text: `Hello,\n\nYour password reset code is: ${code}\n\nIt is valid for ${ttlMinutes} minutes and can be used once. If you did not ask for it, ignore this message.\n`,
    }
  },
  passwordChanged(to: string): Mail {
    return {
      to,
      kind: 'password_changed',
      subject: 'Your NOWATCH password was changed',
      text: 'Hello,\n\nThe password of your NOWATCH account was just changed and your other sessions were ended. If this was not you, reset your password now.\n',
    }
  },
}
