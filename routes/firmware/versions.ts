import { createHash } from 'node:crypto'
import semver from 'semver'

/**
 * Semantic versions (https://semver.org/#spec-item-11) and the one rule of rollout cohorts.
 * Ordering uses the `semver` package; the database orders by `versionKey`, a text whose byte order
 * is the same precedence, so "newest first" can be an index scan and a keyset cursor.
 */

/** The canonical form, or null when the text is not a strict semantic version. */
export function parseVersion(text: string): semver.SemVer | null {
  // `semver.parse` also takes a leading "v" or "="; the API stores only the bare form.
  if (!/^\d/.test(text)) return null
  return semver.parse(text, { loose: false })
}

const pad = (n: number) => String(n).padStart(16, '0')

/**
 * Byte-sortable key of a version's precedence (build metadata is ignored, as semver says).
 * Core numbers are zero-padded; a release sorts after its pre-releases ('1' > '0'); pre-release
 * identifiers are numeric ('a' + padded, lower) or alphanumeric ('b' + text), joined by '!', which sorts
 * below every identifier character, so a shorter identifier list sorts first.
 */
export function versionKey(version: semver.SemVer): string {
  const core = `${pad(version.major)}.${pad(version.minor)}.${pad(version.patch)}`
  if (version.prerelease.length === 0) return `${core}~1`
  const ids = version.prerelease.map((id) => (typeof id === 'number' ? `a${pad(id)}` : `b${id}`))
  return `${core}~0${ids.join('!')}`
}

/**
 * The user's bucket 0–99 for one release: a hash of (release, user), so it is stable across requests
 * and processes, independent between releases, and a user inside at 10 % stays inside at 20 %.
 */
export function cohortBucket(releaseId: string, userId: string): number {
  const digest = createHash('sha256').update(`${releaseId}:${userId}`).digest()
  return digest.readUInt32BE(0) % 100
}

export function inCohort(releaseId: string, userId: string, rolloutPercentage: number): boolean {
  return cohortBucket(releaseId, userId) < rolloutPercentage
}

export { semver }
