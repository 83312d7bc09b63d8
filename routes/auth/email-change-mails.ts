import type { Mail } from '../../plugins/mailer.ts'

/** The user domain's e-mails (the e-mail change), in one place. */
export const userMails = {
  emailChangeCode(to: string, firstName: string, code: string, ttlS: number): Mail {
    return {
      to,
      kind: 'email_change',
      subject: 'Confirm your new NOWATCH e-mail address',
      text: `Hello ${firstName},\n\nTo make this the e-mail address of your NOWATCH account, enter this code in the app: ${code}\n\nIt is valid for ${Math.round(ttlS / 3600)} hours and can be used once. Until then your account keeps its current address. If you did not ask for this, ignore this message.\n`,
    }
  },
  emailChangeToTakenAddress(to: string): Mail {
    return {
      to,
      kind: 'email_change_attempt',
      subject: 'Someone tried to move a NOWATCH account to your e-mail address',
      text: 'Hello,\n\nSomeone asked to change the e-mail address of another NOWATCH account to this address, which already belongs to your account. Nothing changed, and your account is not affected. If it was you, use a different address or delete one of the accounts first.\n',
    }
  },
  emailChanged(to: string, newAddress: string): Mail {
    return {
      to,
      kind: 'email_changed',
      subject: 'The e-mail address of your NOWATCH account was changed',
      text: `Hello,\n\nThe e-mail address of your NOWATCH account was just changed to ${newAddress}, and your other sessions were ended. From now on you log in with the new address. If this was not you, contact NOWATCH support at once by answering this message.\n`,
    }
  },
}
