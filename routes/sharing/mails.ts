import type { Config } from '../../plugins/config.ts'
import type { Mail } from '../../plugins/mailer.ts'

export const sharingMails = {
  shareInvite(config: Config, to: string, ownerName: string, scopes: string[], code: string): Mail {
    return {
      to,
      kind: 'share_invite',
      subject: `${ownerName} wants to share their NOWATCH data with you`,
      text: `Hello,\n\n${ownerName} invites you to see their NOWATCH data (${scopes.join(', ')}).\n\nOpen this link to see the invitation and accept it:\n${config.PUBLIC_URL}/v1/shared/invites/accept?code=${code}\n\nor in the app. The invitation expires in ${config.SHARE_INVITE_TTL_DAYS} days.\n`,
    }
  },
  groupInvite(config: Config, to: string, inviterName: string, groupId: string, code: string): Mail {
    return {
      to,
      kind: 'group_invite',
      subject: `${inviterName} invites you to a NOWATCH group`,
      text: `Hello,\n\n${inviterName} invites you to a NOWATCH group, whose members see each other's data.\n\nOpen this link to see the invitation and join:\n${config.PUBLIC_URL}/v1/group/${groupId}/invite/${code}/accept\n\nor in the app. The invitation expires in ${config.SHARE_INVITE_TTL_DAYS} days.\n`,
    }
  },
}
