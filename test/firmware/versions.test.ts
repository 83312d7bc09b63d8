import { randomUUID } from 'node:crypto'
import t from 'tap'
import { parseRange } from '../../routes/firmware/range.ts'
import { cohortBucket, inCohort, parseVersion, semver, versionKey } from '../../routes/firmware/versions.ts'

const key = (v: string) => {
  const parsed = parseVersion(v)
  if (!parsed) throw new Error(`not a version: ${v}`)
  return versionKey(parsed)
}
const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b))

t.test('the sort key orders versions by semver precedence, not as strings', async (t) => {
  // semver.org §11's own example, with numbers that string order gets wrong.
  const ordered = [
    '0.9.9',
    '1.0.0-0',
    '1.0.0-2',
    '1.0.0-10',
    '1.0.0-alpha',
    '1.0.0-alpha.1',
    '1.0.0-alpha.beta',
    '1.0.0-beta',
    '1.0.0-beta.2',
    '1.0.0-beta.11',
    '1.0.0-rc.1',
    '1.0.0',
    '1.2.0',
    '1.9.0',
    '1.10.0-rc.1',
    '1.10.0',
    '2.0.0-alpha-1',
    '2.0.0-alpha-1.x',
    '2.0.0-alpha-2',
    '2.0.0',
    '10.0.0',
  ]
  t.same([...ordered].sort(semver.compare), ordered, 'the list itself is in semver order')
  const shuffled = [...ordered].sort(() => Math.random() - 0.5)
  t.same(
    shuffled.sort((a, b) => byteOrder(key(a), key(b))),
    ordered,
  )
  t.ok(byteOrder(key('1.10.0'), key('1.9.0')) > 0, '1.10.0 > 1.9.0')
  t.ok(byteOrder(key('1.0.0'), key('1.0.0-rc.1')) > 0, 'a release is above its pre-releases')
  // Every pair agrees with semver.compare, both ways.
  for (const a of ordered) {
    for (const b of ordered) {
      t.equal(Math.sign(byteOrder(key(a), key(b))), semver.compare(a, b), `${a} vs ${b}`)
    }
  }
})

t.test('build metadata does not change precedence; only strict versions parse', async (t) => {
  t.equal(key('1.2.3+build.7'), key('1.2.3'))
  for (const bad of ['v1.2.3', '=1.2.3', '1.2', '01.2.3', '1.2.3-', 'latest', '1.2.3.4']) {
    t.equal(parseVersion(bad), null, bad)
  }
  t.equal(parseVersion('1.2.3-rc.1')?.version, '1.2.3-rc.1')
})

t.test('rollout cohorts are stable per user and release, and only grow', async (t) => {
  const release = randomUUID()
  const users: string[] = Array.from({ length: 2000 }, () => randomUUID())
  for (const u of users.slice(0, 50)) t.equal(cohortBucket(release, u), cohortBucket(release, u))
  let previous = new Set<string>()
  for (const pct of [0, 1, 10, 25, 50, 75, 99, 100]) {
    const inside = new Set(users.filter((u) => inCohort(release, u, pct)))
    const dropped = [...previous].filter((u) => !inside.has(u))
    t.same(dropped, [], `nobody inside at a lower percentage is outside at ${pct}`)
    // Roughly the share asked for (a hash is not exact; 2,000 users give a few percent of slack).
    t.ok(Math.abs(inside.size / users.length - pct / 100) < 0.04, `about ${pct} % inside (${inside.size})`)
    previous = inside
  }
  t.equal(previous.size, users.length, 'everyone at 100 %')
  t.equal(users.filter((u) => inCohort(release, u, 0)).length, 0, 'nobody at 0 %')
  const other = randomUUID()
  const a = users.filter((u) => inCohort(release, u, 10))
  const b = users.filter((u) => inCohort(other, u, 10))
  t.not(a.join(), b.join(), 'another release draws another cohort')
})

t.test('Range header parsing', async (t) => {
  t.equal(parseRange(undefined, 100), null)
  t.same(parseRange('bytes=0-9', 100), { start: 0, end: 9 })
  t.same(parseRange('bytes=90-', 100), { start: 90, end: 99 })
  t.same(parseRange('bytes=90-1000', 100), { start: 90, end: 99 })
  t.same(parseRange('bytes=-10', 100), { start: 90, end: 99 })
  t.same(parseRange('bytes=-1000', 100), { start: 0, end: 99 })
  t.equal(parseRange('bytes=0-1,5-6', 100), null, 'several ranges: the whole file')
  t.equal(parseRange('items=0-1', 100), null, 'another unit is ignored')
  for (const bad of ['bytes=100-', 'bytes=5-4', 'bytes=-0', 'bytes=abc', 'bytes=-', 'bytes=']) {
    t.equal(parseRange(bad, 100), 'unsatisfiable', bad)
  }
})
