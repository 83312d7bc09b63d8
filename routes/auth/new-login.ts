import { isIP } from 'node:net'
import { and, desc, eq, gt, sql } from 'drizzle-orm'
import type { DbOrTx } from '../../db/client.ts'
import { loginAttempts } from '../../db/schema/index.ts'
import type { Mail } from '../../plugins/mailer.ts'
import { parseUserAgent } from './user-agent.ts'

/** How far back a device or network counts as known. */
export const KNOWN_FOR_DAYS = 90
/** The most recent successful logins compared (bounded work per login). */
const COMPARED = 500

/**
 * The network of an address: IPv4 /24, IPv6 /48 (what one household, office or carrier pool tends to
 * keep while its last bits change). IPv4-mapped IPv6 counts as IPv4.
 */
export function networkOf(ip: string | null): string | null {
  if (!ip) return null
  const v4 = ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip
  if (isIP(v4) === 4) return `${v4.split('.').slice(0, 3).join('.')}.0/24`
  if (isIP(ip) !== 6) return null
  const [head, tail = ''] = ip.toLowerCase().split('::')
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const groups = ip.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left
  return `${groups
    .slice(0, 3)
    .map((g) => Number.parseInt(g || '0', 16).toString(16))
    .join(':')}::/48`
}

/** The device kind of a user agent: browser family and OS family ("Chrome on Android"), or null when unknown. */
export function deviceOf(userAgent: string | null): string | null {
  if (!userAgent) return null
  const { browser, operating_system: os } = parseUserAgent(userAgent)
  if (!browser.family && !os.family) return `unknown (${userAgent.slice(0, 60)})`
  return `${browser.family ?? 'an unknown browser'} on ${os.family ?? 'an unknown system'}`
}

/**
 * Whether a successful login is "new" for the security e-mail: its device kind (browser and OS family)
 * or its IP network has not been seen in any successful login of the account in the last KNOWN_FOR_DAYS
 * days. The first login of an account is not new (there is nothing to compare with; registration just
 * happened). Versions are ignored, so a browser update is not a new device.
 */
export async function isNewLogin(
  tx: DbOrTx,
  userId: string,
  login: { ip: string; userAgent: string | null },
): Promise<{ newDevice: boolean; newNetwork: boolean } | null> {
  const seen = await tx
    .select({ ip: loginAttempts.ip, userAgent: loginAttempts.userAgent })
    .from(loginAttempts)
    .where(
      and(
        eq(loginAttempts.userId, userId),
        eq(loginAttempts.success, true),
        gt(loginAttempts.createdAt, sql`now() - make_interval(days => ${KNOWN_FOR_DAYS})`),
      ),
    )
    .orderBy(desc(loginAttempts.createdAt))
    .limit(COMPARED)
  if (seen.length === 0) return null
  const device = deviceOf(login.userAgent)
  const network = networkOf(login.ip)
  const newDevice = !seen.some((s) => deviceOf(s.userAgent) === device)
  const newNetwork = !seen.some((s) => networkOf(s.ip) === network)
  return newDevice || newNetwork ? { newDevice, newNetwork } : null
}

export function newLoginMail(
  to: string,
  firstName: string,
  login: { ip: string; userAgent: string | null; at: Date },
  what: { newDevice: boolean; newNetwork: boolean },
): Mail {
  const why = [what.newDevice ? 'a device' : null, what.newNetwork ? 'a network' : null].filter(Boolean).join(' and ')
  return {
    to,
    kind: 'new_login',
    subject: 'New login to your NOWATCH account',
    text: `Hello ${firstName},\n\nYour NOWATCH account was just logged in from ${why} it has not used in the last ${KNOWN_FOR_DAYS} days:\n\n  when:   ${login.at.toISOString()}\n  device: ${deviceOf(login.userAgent) ?? 'unknown'}\n  IP:     ${login.ip}\n\nIf this was you, there is nothing to do. If not, change your password now and end the sessions you do not know in the app (Settings, Sessions). You can turn these e-mails off with the setting notifications-security__email.\n`,
  }
}
