import { lookup } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'

/**
 * Where a webhook may go. A receiver URL is attacker-chosen input that this server will call from inside
 * its network (OWASP SSRF Prevention Cheat Sheet; Standard Webhooks "Server side request forgery"), so
 * only `https://` URLs to public addresses are accepted: the host is resolved and *every* address it
 * resolves to must be public, at subscription time and again at each delivery, and the delivery then
 * connects to the address it checked (pinned), so a DNS answer that changes between the check and the
 * connection (DNS rebinding) cannot redirect it. Redirects are never followed.
 */

/** The address ranges a webhook never reaches (IANA special-purpose registries, RFC 6890 and successors). */
const REFUSED_V4: Array<[string, number, string]> = [
  ['0.0.0.0', 8, '"this network"'],
  ['10.0.0.0', 8, 'private (RFC 1918)'],
  ['100.64.0.0', 10, 'carrier-grade NAT (RFC 6598)'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local (cloud metadata at 169.254.169.254)'],
  ['172.16.0.0', 12, 'private (RFC 1918)'],
  ['192.0.0.0', 24, 'IETF protocol assignments'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, '6to4 relay'],
  ['192.168.0.0', 16, 'private (RFC 1918)'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
]
const REFUSED_V6: Array<[string, number, string]> = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['::ffff:0:0', 96, 'IPv4-mapped'],
  ['64:ff9b::', 96, 'NAT64'],
  ['64:ff9b:1::', 48, 'NAT64 (local)'],
  ['100::', 64, 'discard'],
  ['2001::', 23, 'IETF protocol assignments (Teredo, ORCHID …)'],
  ['2001:db8::', 32, 'documentation'],
  ['2002::', 16, '6to4'],
  ['fc00::', 7, 'unique local (ULA; cloud metadata at fd00:ec2::254)'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local'],
  ['ff00::', 8, 'multicast'],
]

// Two lists: node's BlockList treats IPv4 addresses as their IPv4-mapped IPv6 form, so one list holding
// ::ffff:0:0/96 would refuse every IPv4 address (a test caught exactly that).
const refusedV4 = new BlockList()
for (const [net, prefix] of REFUSED_V4) refusedV4.addSubnet(net, prefix, 'ipv4')
const refusedV6 = new BlockList()
for (const [net, prefix] of REFUSED_V6) refusedV6.addSubnet(net, prefix, 'ipv6')

/** Whether an IP address (v4 or v6, v4-mapped included) is one a webhook may be sent to. */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address)
  if (family === 0) return false
  return family === 4 ? !refusedV4.check(address, 'ipv4') : !refusedV6.check(address, 'ipv6')
}

export interface ResolvedAddress {
  address: string
  family: 4 | 6
}

/** Resolves a host name to all its addresses; tests inject their own (a name resolving to a private address). */
export type Resolver = (host: string) => Promise<ResolvedAddress[]>

export const systemResolver: Resolver = async (host) => {
  const all = await lookup(host, { all: true, verbatim: true })
  return all.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }))
}

export class TargetRefused extends Error {
  override name = 'TargetRefused'
}

export interface TargetPolicy {
  /** WEBHOOK_ALLOW_PRIVATE_TARGETS (development): http:// and private/loopback addresses too. */
  allowPrivate: boolean
  resolve: Resolver
}

export interface CheckedTarget {
  url: URL
  /** The address the delivery connects to (checked; pinned for the connection). */
  address: ResolvedAddress
}

/** The URL's own rules (scheme, no credentials, a host), without resolving it. */
export function checkUrl(raw: string, allowPrivate: boolean): URL {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new TargetRefused('is not a URL')
  }
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) {
    throw new TargetRefused('must be an https:// URL')
  }
  if (url.username || url.password) throw new TargetRefused('must not carry a user name or password')
  if (!url.hostname) throw new TargetRefused('must name a host')
  return url
}

/**
 * Checks a receiver URL and answers the address to connect to. Every address of the host must be public
 * (one private answer among public ones is refused too: the connection could land on any of them).
 */
export async function checkTarget(raw: string, policy: TargetPolicy): Promise<CheckedTarget> {
  const url = checkUrl(raw, policy.allowPrivate)
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  let addresses: ResolvedAddress[]
  const literal = isIP(host)
  if (literal) addresses = [{ address: host, family: literal === 6 ? 6 : 4 }]
  else {
    if (!policy.allowPrivate && (host === 'localhost' || host.endsWith('.localhost'))) {
      throw new TargetRefused('must not be a loopback host')
    }
    try {
      addresses = await policy.resolve(host)
    } catch {
      throw new TargetRefused('has a host name that does not resolve')
    }
  }
  if (addresses.length === 0) throw new TargetRefused('has a host name that does not resolve')
  if (!policy.allowPrivate) {
    const bad = addresses.find((a) => !isPublicAddress(a.address))
    if (bad) throw new TargetRefused('resolves to a private, loopback, link-local or otherwise internal address')
  }
  return { url, address: addresses[0] }
}
