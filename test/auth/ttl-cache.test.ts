import t from 'tap'
import { SessionCache, TtlCache } from '../../plugins/auth.ts'

t.test('one load per key while fresh, shared by concurrent misses', async (t) => {
  let loads = 0
  const cache = new TtlCache(60_000, async (key) => `${key}:${++loads}`)
  const [a, b] = await Promise.all([cache.get('u1'), cache.get('u1')])
  t.equal(a, 'u1:1')
  t.equal(b, 'u1:1')
  t.equal(await cache.get('u1'), 'u1:1')
  t.equal(await cache.get('u2'), 'u2:2')
  t.equal(loads, 2)
})

t.test('invalidate drops the entry, also while its load is in flight', async (t) => {
  let version = 1
  const cache = new TtlCache(60_000, async () => version)
  t.equal(await cache.get('u'), 1)
  version = 2
  t.equal(await cache.get('u'), 1, 'still the cached value')
  cache.invalidate('u')
  t.equal(await cache.get('u'), 2, 'reloaded after invalidate')
  const pending = cache.get('other')
  cache.invalidate('other')
  version = 3
  await pending
  t.equal(await cache.get('other'), 3, 'an entry invalidated during its load is not kept')
})

t.test('a failed load is not kept; ttl 0 caches nothing', async (t) => {
  let fail = true
  const cache = new TtlCache(60_000, async () => {
    if (fail) throw new Error('db down')
    return 'ok'
  })
  await t.rejects(cache.get('u'), /db down/)
  fail = false
  t.equal(await cache.get('u'), 'ok')
  let loads = 0
  const none = new TtlCache(0, async () => ++loads)
  await none.get('u')
  await none.get('u')
  t.equal(loads, 2)
})

t.test('bounded: past max entries the map starts over', async (t) => {
  let loads = 0
  const cache = new TtlCache(60_000, async () => ++loads, 2)
  await cache.get('a')
  await cache.get('b')
  await cache.get('c')
  t.equal(loads, 3)
  await cache.get('c')
  t.equal(loads, 3, 'the newest entry survives the reset')
  await cache.get('a')
  t.equal(loads, 4, 'older ones were dropped')
})

t.test(
  'stale entries leave the caches as newer ones arrive (a long-running server keeps only fresh ones)',
  async (t) => {
    let now = Date.parse('2026-12-01T12:00:00Z')
    t.teardown(() => {
      Date.now = realNow
    })
    const realNow = Date.now
    Date.now = () => now
    const size = (cache: object) => (cache as unknown as { entries: Map<string, unknown> }).entries.size
    const ttl = new TtlCache(2000, async (key) => key)
    for (let i = 0; i < 50; i++) await ttl.get(`u${i}`)
    t.equal(size(ttl), 50)
    await ttl.get('u0')
    now += 2500
    await ttl.get('late')
    t.equal(size(ttl), 1, 'the 50 stale entries were dropped by the next miss')
    t.equal(await ttl.get('late'), 'late')

    const touched: string[] = []
    const sessions = new SessionCache(
      2000,
      async (_userId, sid) => ({ active: true, sid }) as never,
      async (_userId, sid) => {
        touched.push(sid)
      },
    )
    for (let i = 0; i < 50; i++) await sessions.get('u', `s${i}`)
    t.equal(size(sessions), 50)
    now += 61_000
    await sessions.get('u', 's0')
    t.equal(size(sessions), 1, 'expired sessions are gone, the one asked again is back')
    t.equal(
      (sessions as unknown as { touched: Map<string, number> }).touched.size,
      1,
      'touch marks older than a minute too',
    )
    t.equal(touched.filter((s) => s === 's0').length, 2, 's0 is touched again after a minute')
  },
)
