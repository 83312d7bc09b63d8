import { eq } from 'drizzle-orm'
import t from 'tap'
import { auditLog, firmwareInstallReports, users } from '../../db/schema/index.ts'
import { exportRows } from '../../routes/firmware/repository.ts'
import { cohortBucket } from '../../routes/firmware/versions.ts'
import { firmwareApp, image, release, sha256 } from '../helpers/firmware.ts'
import { userWithToken } from '../helpers/fixtures.ts'

type Headers = Record<string, string>

t.test('latest: semver order, channels, minimum version, mandatory, 204', async (t) => {
  const { app, admin } = await firmwareApp(t)
  const h = admin.headers
  const user = await userWithToken(app)
  const latest = (query: string, headers: Headers = user.headers) =>
    app.inject({ method: 'GET', url: `/v1/firmware/latest?${query}`, headers })

  for (const v of ['1.2.0', '1.9.0', '1.10.0-rc.1', '1.10.0']) await release(app, h, { version: v })
  await release(app, h, { version: '1.11.0' }, { publish: false })
  await release(app, h, { version: '2.0.0-beta.1', channel: 'beta' })

  const from19 = await latest('hardware=NW-1&current_version=1.9.0')
  t.equal(from19.statusCode, 200)
  t.match(from19.json(), { version: '1.10.0', channel: 'stable', rollback: false, mandatory: false })
  t.same(Object.keys(from19.json()).sort(), [
    'channel',
    'download_path',
    'hardware_model',
    'id',
    'mandatory',
    'min_version',
    'published_at',
    'release_notes',
    'rollback',
    'sha256',
    'size',
    'version',
  ])
  t.equal((await latest('hardware=NW-1&current_version=1.10.0-rc.1')).json().version, '1.10.0', 'rc → release')
  const upToDate = await latest('hardware=NW-1&current_version=1.10.0')
  t.equal(upToDate.statusCode, 204, 'the draft 1.11.0 is not offered; beta is not offered on stable')
  t.equal(upToDate.body, '')
  t.equal((await latest('hardware=NW-1&current_version=1.10.0&channel=beta')).json().version, '2.0.0-beta.1')
  t.equal((await latest('hardware=NW-1&current_version=2.0.0-beta.1&channel=beta')).statusCode, 204)
  t.equal((await latest('hardware=NW-404&current_version=0.0.1')).statusCode, 204, 'unknown model')

  const bad = await latest('hardware=NW-1&current_version=1.9')
  t.equal(bad.statusCode, 400)
  t.match(bad.json(), { error: 'validation_failed', details: [{ field: 'query.current_version' }] })
  t.equal((await latest('hardware=NW-1&current_version=1.9.0', {})).statusCode, 401)

  t.test('a device below the minimum version gets the highest stepping stone', async (t) => {
    await release(app, h, { hardware_model: 'NW-5', version: '1.0.0' })
    await release(app, h, { hardware_model: 'NW-5', version: '2.0.0', mandatory: true })
    await release(app, h, { hardware_model: 'NW-5', version: '3.0.0', min_version: '2.0.0' })
    const old = await latest('hardware=NW-5&current_version=1.0.0')
    t.match(old.json(), { version: '2.0.0', mandatory: true })
    const mid = await latest('hardware=NW-5&current_version=2.0.0')
    t.match(mid.json(), { version: '3.0.0', min_version: '2.0.0', mandatory: false })
    await release(app, h, { hardware_model: 'NW-6', version: '1.0.0', mandatory: true })
    await release(app, h, { hardware_model: 'NW-6', version: '1.1.0' })
    const skip = await latest('hardware=NW-6&current_version=0.9.0')
    t.match(skip.json(), { version: '1.1.0', mandatory: true }, 'skipping a mandatory release makes the jump mandatory')
  })

  t.test('published list: highest version first, paginated', async (t) => {
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const res: Awaited<ReturnType<typeof app.inject>> = await app.inject({
        method: 'GET',
        url: `/v1/firmware?hardware=NW-1&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        headers: user.headers,
      })
      t.equal(res.statusCode, 200)
      seen.push(...res.json().data.map((r: { version: string }) => r.version))
      cursor = res.json().next_cursor
    } while (cursor)
    t.same(seen, ['2.0.0-beta.1', '1.10.0', '1.10.0-rc.1', '1.9.0', '1.2.0'])
    const stable = await app.inject({
      method: 'GET',
      url: '/v1/firmware?hardware=NW-1&channel=stable',
      headers: user.headers,
    })
    t.same(
      stable.json().data.map((r: { version: string }) => r.version),
      ['1.10.0', '1.10.0-rc.1', '1.9.0', '1.2.0'],
    )
    t.notOk('status' in stable.json().data[0], 'users do not see admin fields')
  })
})

t.test('rollout cohorts: exactly the users whose bucket is below the percentage, and it only grows', async (t) => {
  const { app, admin } = await firmwareApp(t)
  const h = admin.headers
  await release(app, h, { version: '1.0.0' })
  const r = await release(app, h, { version: '1.1.0', rollout_percentage: 0 })
  const people = await Promise.all(Array.from({ length: 16 }, () => userWithToken(app)))
  const offered = async () => {
    const ids: string[] = []
    for (const p of people) {
      const res = await app.inject({
        method: 'GET',
        url: '/v1/firmware/latest?hardware=NW-1&current_version=1.0.0',
        headers: p.headers,
      })
      if (res.statusCode === 200) ids.push(p.user.id)
    }
    return ids.sort()
  }
  t.same(await offered(), [], 'nobody at 0 %')
  let before: string[] = []
  for (const pct of [30, 60, 100]) {
    await app.inject({
      method: 'PUT',
      url: `/v1/admin/firmware/${r.id}/rollout`,
      headers: h,
      payload: { rollout_percentage: pct },
    })
    const now = await offered()
    const expected = people
      .filter((p) => cohortBucket(r.id, p.user.id) < pct)
      .map((p) => p.user.id)
      .sort()
    t.same(now, expected, `at ${pct} %: the users whose bucket is below ${pct}`)
    t.same(await offered(), now, 'asking again gives the same answer')
    t.same(
      before.filter((id) => !now.includes(id)),
      [],
      'nobody drops out as the percentage grows',
    )
    before = now
  }
  t.equal(before.length, people.length)
})

t.test('download: whole file, resume by Range, 416, 304, drafts hidden', async (t) => {
  const { app, admin } = await firmwareApp(t)
  const user = await userWithToken(app)
  const body = image(400 * 1024)
  const r = await release(app, admin.headers, { version: '1.0.0' }, { body })
  const draft = await release(app, admin.headers, { version: '1.1.0' }, { publish: false })
  const get = (headers: Headers = {}, id = r.id) =>
    app.inject({ method: 'GET', url: `/v1/firmware/${id}/download`, headers: { ...user.headers, ...headers } })

  const whole = await get()
  t.equal(whole.statusCode, 200)
  t.same(whole.rawPayload, body)
  const digest = Buffer.from(sha256(body), 'hex').toString('base64')
  t.match(whole.headers, {
    'content-length': String(body.length),
    'content-type': 'application/octet-stream',
    etag: `"${sha256(body)}"`,
    'accept-ranges': 'bytes',
    digest: `sha-256=${digest}`,
    'repr-digest': `sha-256=:${digest}:`,
  })

  // A phone loses its connection after 150,000 bytes and resumes from there.
  const first = await get({ range: 'bytes=0-149999' })
  t.equal(first.statusCode, 206)
  t.equal(first.headers['content-range'], `bytes 0-149999/${body.length}`)
  t.equal(first.headers['content-length'], '150000')
  const rest = await get({ range: 'bytes=150000-', 'if-range': whole.headers.etag as string })
  t.equal(rest.statusCode, 206)
  t.equal(rest.headers['content-range'], `bytes 150000-${body.length - 1}/${body.length}`)
  const joined = Buffer.concat([first.rawPayload, rest.rawPayload])
  t.equal(sha256(joined), r.sha256, 'the resumed download has the published sha256')

  const tail = await get({ range: 'bytes=-100' })
  t.same(tail.rawPayload, body.subarray(body.length - 100))
  const stale = await get({ range: 'bytes=10-', 'if-range': '"other"' })
  t.equal(stale.statusCode, 200, 'If-Range with another ETag: the whole file')
  t.equal(stale.rawPayload.length, body.length)

  for (const range of [`bytes=${body.length}-`, 'bytes=500-100', 'bytes=x-y']) {
    const res = await get({ range })
    t.equal(res.statusCode, 416, range)
    t.equal(res.headers['content-range'], `bytes */${body.length}`)
    t.equal(res.json().error, 'range_not_satisfiable')
  }
  const notModified = await get({ 'if-none-match': whole.headers.etag as string })
  t.equal(notModified.statusCode, 304)
  t.equal(notModified.rawPayload.length, 0)

  t.equal((await get({}, draft.id)).statusCode, 404, 'a user cannot download a draft')
  t.equal((await get({}, draft.id)).json().error, 'not_found')
  t.equal((await get({}, '00000000-0000-4000-8000-000000000000')).statusCode, 404)
  const asAdmin = await app.inject({ method: 'GET', url: `/v1/firmware/${draft.id}/download`, headers: admin.headers })
  t.equal(asAdmin.statusCode, 200, 'admins can fetch a draft to test it')
  t.equal((await app.inject({ method: 'GET', url: `/v1/firmware/${r.id}/download` })).statusCode, 401)
})

t.test('install reports halt a failing rollout by itself; resume and rollback', async (t) => {
  const { app, admin } = await firmwareApp(t, { FIRMWARE_HALT_MIN_REPORTS: '4', FIRMWARE_HALT_FAILURE_RATE: '0.5' })
  const h = admin.headers
  const good = await release(app, h, { version: '1.0.0' })
  const bad = await release(app, h, { version: '1.1.0' })
  const report = (headers: Headers, outcome: 'success' | 'failure', device = 'watch-1', id = bad.id) =>
    app.inject({
      method: 'POST',
      url: `/v1/firmware/${id}/reports`,
      headers,
      payload: {
        device_id: device,
        outcome,
        ...(outcome === 'failure' ? { reason: 'flash write error' } : {}),
        from_version: '1.0.0',
      },
    })
  const status = async () =>
    (await app.inject({ method: 'GET', url: `/v1/admin/firmware/${bad.id}`, headers: h })).json()

  const people = await Promise.all(Array.from({ length: 6 }, () => userWithToken(app)))
  const [a, b, c, d, e, f] = people

  const noReason = await app.inject({
    method: 'POST',
    url: `/v1/firmware/${bad.id}/reports`,
    headers: a.headers,
    payload: { device_id: 'w', outcome: 'failure' },
  })
  t.match(noReason.json(), { error: 'validation_failed', details: [{ field: 'reason' }] })

  // One account inventing devices counts once.
  for (const device of ['w1', 'w2', 'w3', 'w4', 'w5'])
    t.equal((await report(a.headers, 'failure', device)).statusCode, 200)
  t.equal((await status()).status, 'published', 'one failing user is not enough')
  const first = await report(b.headers, 'success')
  t.match(first.json(), {
    release_id: bad.id,
    device_id: 'watch-1',
    outcome: 'success',
    reason: null,
    from_version: '1.0.0',
  })
  await report(c.headers, 'success')
  await report(d.headers, 'failure')
  t.equal((await status()).status, 'published', '2 of 4 users failing is not above 0.5')
  // c retries and fails: its outcome is replaced, not added; 3 of 4 users now failed.
  await report(c.headers, 'failure')
  const halted = await status()
  t.match(halted, {
    status: 'halted',
    halt_reason: 'automatic: 3 of 4 reporting users failed to install',
    install_reports: { total: 8, success: 1, failure: 7, reporting_users: 4, failing_users: 3 },
  })
  t.ok(halted.halted_at)
  const [audit] = await app.db.select().from(auditLog).where(eq(auditLog.action, 'firmware.halt'))
  t.match(audit, { actorId: null, targetId: bad.id, details: { automatic: true, failing_users: 3 } })

  const latest = (headers: Headers, current: string) =>
    app.inject({ method: 'GET', url: `/v1/firmware/latest?hardware=NW-1&current_version=${current}`, headers })
  t.equal((await latest(e.headers, '1.0.0')).statusCode, 204, 'nobody new is offered a halted release')
  t.equal(
    (await app.inject({ method: 'GET', url: `/v1/firmware/${bad.id}/download`, headers: e.headers })).statusCode,
    200,
  )

  // Resume: earlier reports no longer count, one new failure does not halt it again.
  const resumed = await app.inject({ method: 'POST', url: `/v1/admin/firmware/${bad.id}/resume`, headers: h })
  t.equal(resumed.json().status, 'published')
  await report(e.headers, 'failure')
  t.equal((await status()).status, 'published')
  t.equal((await latest(f.headers, '1.0.0')).json().version, '1.1.0')

  // Roll back: devices on 1.1.0 are offered 1.0.0, nobody is offered 1.1.0.
  const rolled = await app.inject({ method: 'POST', url: `/v1/admin/firmware/${bad.id}/rollback`, headers: h })
  t.match(rolled.json(), { status: 'rolled_back', rollback_target_id: good.id })
  t.match((await latest(f.headers, '1.1.0')).json(), { id: good.id, version: '1.0.0', rollback: true, mandatory: true })
  t.equal((await latest(f.headers, '1.0.0')).statusCode, 204)
  t.equal(
    (await app.inject({ method: 'GET', url: `/v1/firmware/${bad.id}/download`, headers: f.headers })).statusCode,
    404,
  )

  t.test('reports on drafts are refused like a missing id', async (t) => {
    const draft = await release(app, h, { version: '9.0.0' }, { publish: false })
    const res = await report(f.headers, 'success', 'w', draft.id)
    t.equal(res.statusCode, 404)
    t.equal((await report(f.headers, 'success', 'w', '00000000-0000-4000-8000-000000000000')).statusCode, 404)
  })

  t.test('the export holds only the caller’s reports; deleting the account deletes them', async (t) => {
    const rows: Record<string, unknown>[] = []
    for await (const row of exportRows(app.db, b.user.id)) rows.push(row)
    t.match(rows, [
      { release_id: bad.id, hardware_model: 'NW-1', version: '1.1.0', device_id: 'watch-1', outcome: 'success' },
    ])
    t.equal(rows.length, 1)
    const ofA: unknown[] = []
    for await (const row of exportRows(app.db, a.user.id)) ofA.push(row)
    t.equal(ofA.length, 5)
    await app.db.delete(users).where(eq(users.id, a.user.id))
    const left = await app.db.select().from(firmwareInstallReports).where(eq(firmwareInstallReports.userId, a.user.id))
    t.same(left, [])
    t.equal((await status()).install_reports.total, 4, 'the counts no longer include them')
  })
})
