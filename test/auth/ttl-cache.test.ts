import t from 'tap'
import { TtlCache } from '../../plugins/auth.ts'

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
