import { readFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { eq } from 'drizzle-orm'
import t from 'tap'
import { auditLog, firmwareReleases, users } from '../../db/schema/index.ts'
import { filesIn, firmwareApp, image, release, sha256, uploadRequest } from '../helpers/firmware.ts'
import { userWithToken } from '../helpers/fixtures.ts'

t.test('upload streams the image to FIRMWARE_DIR with its sha256 and size, as a draft', async (t) => {
  const { app, dir, admin } = await firmwareApp(t)
  const body = image(300 * 1024)
  const res = await app.inject(
    uploadRequest(
      admin.headers,
      {
        hardware_model: 'NW-2',
        version: '1.4.0',
        channel: 'beta',
        min_version: '1.0.0',
        mandatory: true,
        rollout_percentage: 25,
        release_notes: 'Fixes sleep staging.',
      },
      body,
    ),
  )
  t.equal(res.statusCode, 201)
  const r = res.json()
  t.match(r, {
    hardware_model: 'NW-2',
    version: '1.4.0',
    channel: 'beta',
    status: 'draft',
    size: body.length,
    sha256: sha256(body),
    min_version: '1.0.0',
    mandatory: true,
    rollout_percentage: 25,
    release_notes: 'Fixes sleep staging.',
    uploaded_by: admin.user.id,
    published_at: null,
    download_path: `/v1/firmware/${r.id}/download`,
    install_reports: { total: 0, success: 0, failure: 0 },
  })
  t.same(await readFile(join(dir, `${r.id}.bin`)), body, 'the stored file is the image')
  t.same(await filesIn(dir), [`${r.id}.bin`], 'no temp file left')
  const [audit] = await app.db.select().from(auditLog).where(eq(auditLog.targetId, r.id))
  t.match(audit, { action: 'firmware.upload', actorId: admin.user.id, details: { sha256: sha256(body) } })

  t.test('the same model and version twice is 409, also with other build metadata', async (t) => {
    for (const version of ['1.4.0', '1.4.0+build.2']) {
      const again = await app.inject(uploadRequest(admin.headers, { hardware_model: 'NW-2', version }, image(1000)))
      t.equal(again.statusCode, 409)
      t.equal(again.json().error, 'firmware_version_exists')
    }
    const otherModel = await app.inject(
      uploadRequest(admin.headers, { hardware_model: 'NW-3', version: '1.4.0' }, image(1000)),
    )
    t.equal(otherModel.statusCode, 201, 'another model may have the same version')
  })

  t.test('bad metadata is a 400 that names the field; no file is kept', async (t) => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ version: 'v1.0.0' }, 'query.version'],
      [{ version: '2.0.0', min_version: '2.0.0' }, 'query.min_version'],
      [{ version: '2.0.0', min_version: 'one' }, 'query.min_version'],
      [{ version: '2.0.0', rollout_percentage: 101 }, 'query.rollout_percentage'],
      [{ version: '2.0.0', channel: 'nightly' }, 'query.channel'],
      [{ version: '2.0.0', hardware_model: '../etc' }, 'query.hardware_model'],
    ]
    for (const [meta, field] of cases) {
      const res = await app.inject(uploadRequest(admin.headers, meta as { version: string }, image(1000)))
      t.equal(res.statusCode, 400, JSON.stringify(meta))
      t.match(res.json(), { error: 'validation_failed', details: [{ field }] })
    }
    const empty = await app.inject(uploadRequest(admin.headers, { version: '2.0.0' }, Buffer.alloc(0)))
    t.equal(empty.statusCode, 400)
    t.equal(empty.json().error, 'empty_firmware')
    const json = await app.inject({
      method: 'POST',
      url: '/v1/admin/firmware?hardware_model=NW-1&version=2.0.0',
      headers: admin.headers,
      payload: { image: 'x' },
    })
    t.equal(json.statusCode, 415)
    const files = (await filesIn(dir)).filter((f) => !f.endsWith('.bin'))
    t.same(files, [], 'no temp files')
  })
})

t.test('size limit: 413 when announced, and while streaming; nothing left behind', async (t) => {
  const { app, dir, admin } = await firmwareApp(t, { FIRMWARE_MAX_BYTES: String(100 * 1024) })
  const announced = await app.inject(uploadRequest(admin.headers, { version: '1.0.0' }, image(300 * 1024)))
  t.equal(announced.statusCode, 413)
  t.same(announced.json(), { error: 'firmware_too_large', message: 'A firmware image may be at most 102400 bytes.' })

  // No Content-Length: the limit is found while streaming.
  const req = uploadRequest(admin.headers, { version: '1.0.1' }, Buffer.alloc(0))
  const chunks = Array.from({ length: 30 }, () => image(10 * 1024))
  const streamed = await app.inject({ ...req, payload: Readable.from(chunks) })
  t.equal(streamed.statusCode, 413)
  t.equal(streamed.json().error, 'firmware_too_large')

  const exact = await app.inject(uploadRequest(admin.headers, { version: '1.0.2' }, image(100 * 1024)))
  t.equal(exact.statusCode, 201, 'exactly the limit is allowed')
  t.same(await filesIn(dir), [`${exact.json().id}.bin`])
  t.equal((await app.db.select().from(firmwareReleases)).length, 1)
})

t.test('an interrupted upload leaves no release and no file', async (t) => {
  const { app, dir, admin } = await firmwareApp(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const req = uploadRequest(admin.headers, { version: '9.9.9' }, Buffer.alloc(0))
  const client = httpRequest({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: req.url,
    headers: { ...req.headers, 'content-length': String(300 * 1024) },
  })
  client.on('error', () => {})
  client.write(image(100 * 1024))
  // Wait until the server is writing the temp file, then cut the connection mid-body.
  await until(async () => (await filesIn(dir)).length > 0)
  client.destroy()
  await until(async () => (await filesIn(dir)).length === 0)
  t.same(await filesIn(dir), [], 'the temp file is gone')
  t.same(await app.db.select().from(firmwareReleases), [], 'no release row')
})

t.test('metadata, rollout, status changes and deletion, each in the audit log', async (t) => {
  const { app, dir, admin } = await firmwareApp(t)
  const h = admin.headers
  const base = await release(app, h, { version: '1.0.0' })
  const draft = await release(app, h, { version: '1.1.0' }, { publish: false })

  const patched = await app.inject({
    method: 'PATCH',
    url: `/v1/admin/firmware/${draft.id}`,
    headers: h,
    payload: { release_notes: 'Longer notes '.repeat(300), min_version: '1.0.0', mandatory: true, channel: 'beta' },
  })
  t.equal(patched.statusCode, 200)
  t.match(patched.json(), { min_version: '1.0.0', mandatory: true, channel: 'beta', version: '1.1.0' })
  const badMin = await app.inject({
    method: 'PATCH',
    url: `/v1/admin/firmware/${draft.id}`,
    headers: h,
    payload: { min_version: '1.2.0' },
  })
  t.equal(badMin.statusCode, 400)
  const readOnly = await app.inject({
    method: 'PATCH',
    url: `/v1/admin/firmware/${draft.id}`,
    headers: h,
    payload: { version: '3.0.0' },
  })
  t.match(readOnly.json(), {
    error: 'validation_failed',
    details: [{ field: 'version', problem: 'is not an allowed field' }],
  })
  const cleared = await app.inject({
    method: 'PATCH',
    url: `/v1/admin/firmware/${draft.id}`,
    headers: h,
    payload: { min_version: null, channel: 'stable' },
  })
  t.match(cleared.json(), { min_version: null, channel: 'stable' })

  const rollout = await app.inject({
    method: 'PUT',
    url: `/v1/admin/firmware/${draft.id}/rollout`,
    headers: h,
    payload: { rollout_percentage: 10 },
  })
  t.equal(rollout.json().rollout_percentage, 10)
  const tooMuch = await app.inject({
    method: 'PUT',
    url: `/v1/admin/firmware/${draft.id}/rollout`,
    headers: h,
    payload: { rollout_percentage: 150 },
  })
  t.equal(tooMuch.statusCode, 400)

  const step = (id: string, action: string) =>
    app.inject({ method: 'POST', url: `/v1/admin/firmware/${id}/${action}`, headers: h })
  t.match((await step(draft.id, 'deprecate')).json(), { error: 'invalid_status' }, 'a draft cannot be deprecated')
  t.equal((await step(draft.id, 'resume')).statusCode, 409)
  const published = (await step(draft.id, 'publish')).json()
  t.match(published, { status: 'published' })
  t.ok(published.published_at)
  t.equal((await step(draft.id, 'publish')).statusCode, 409, 'publish twice')
  t.match((await step(draft.id, 'halt')).json(), { status: 'halted', halt_reason: 'halted by an administrator' })
  t.match((await step(draft.id, 'resume')).json(), { status: 'published', halted_at: null, halt_reason: null })
  t.match((await step(draft.id, 'deprecate')).json(), { status: 'deprecated' })
  t.match((await step(base.id, 'rollback')).json(), { error: 'no_previous_release' }, 'nothing below 1.0.0')

  const del = await app.inject({ method: 'DELETE', url: `/v1/admin/firmware/${base.id}`, headers: h })
  t.equal(del.statusCode, 409)
  t.equal(del.json().error, 'not_a_draft')
  const gone = await release(app, h, { version: '2.0.0' }, { publish: false })
  const ok = await app.inject({ method: 'DELETE', url: `/v1/admin/firmware/${gone.id}`, headers: h })
  t.same(ok.json(), { status: 'success' })
  t.notOk((await filesIn(dir)).includes(`${gone.id}.bin`), 'the file went with the draft')
  t.equal((await app.inject({ method: 'GET', url: `/v1/admin/firmware/${gone.id}`, headers: h })).statusCode, 404)

  const entries = await app.db.select().from(auditLog).where(eq(auditLog.targetId, draft.id))
  // Refused attempts are admin actions too: each has a generic entry with its status (plugins/audit.ts).
  t.same(
    entries
      .filter((e) => e.targetType === 'request')
      .map((e) => `${e.action} ${(e.details as { status: number }).status}`)
      .sort(),
    [
      'PATCH /v1/admin/firmware/:id 400',
      'PATCH /v1/admin/firmware/:id 400',
      'POST /v1/admin/firmware/:id/deprecate 409',
      'POST /v1/admin/firmware/:id/publish 409',
      'POST /v1/admin/firmware/:id/resume 409',
      'PUT /v1/admin/firmware/:id/rollout 400',
    ],
  )
  const actions = entries
    .filter((e) => e.targetType !== 'request')
    .map((a) => a.action)
    .sort()
  t.same(actions, [
    'firmware.deprecate',
    'firmware.halt',
    'firmware.publish',
    'firmware.resume',
    'firmware.rollout',
    'firmware.update',
    'firmware.update',
    'firmware.upload',
  ])
  const deleted = await app.db.select().from(auditLog).where(eq(auditLog.targetId, gone.id))
  t.ok(deleted.some((a) => a.action === 'firmware.delete'))

  t.test('list pages through every release with filters, no gaps or repeats', async (t) => {
    for (const v of ['3.0.0', '3.1.0', '3.2.0']) await release(app, h, { version: v, hardware_model: 'NW-9' })
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const res: Awaited<ReturnType<typeof app.inject>> = await app.inject({
        method: 'GET',
        url: `/v1/admin/firmware?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        headers: h,
      })
      t.equal(res.statusCode, 200)
      seen.push(...res.json().data.map((r: { id: string }) => r.id))
      cursor = res.json().next_cursor
    } while (cursor)
    t.equal(seen.length, 5)
    t.equal(new Set(seen).size, 5)
    const nw9 = await app.inject({
      method: 'GET',
      url: '/v1/admin/firmware?hardware=NW-9&status=published',
      headers: h,
    })
    t.same(
      nw9.json().data.map((r: { version: string }) => r.version),
      ['3.2.0', '3.1.0', '3.0.0'],
    )
    const bad = await app.inject({ method: 'GET', url: '/v1/admin/firmware?cursor=nope', headers: h })
    t.equal(bad.statusCode, 400)
  })

  t.test('the release outlives its uploader', async (t) => {
    const other = await userWithToken(app, { role: 'admin' })
    const mine = await release(app, other.headers, { version: '4.0.0' })
    await app.db.delete(users).where(eq(users.id, other.user.id))
    const res = await app.inject({ method: 'GET', url: `/v1/admin/firmware/${mine.id}`, headers: h })
    t.match(res.json(), { id: mine.id, uploaded_by: null, status: 'published' })
  })
})

t.test('every admin route refuses users (403) and anonymous callers (401)', async (t) => {
  const { app, admin } = await firmwareApp(t)
  const r = await release(app, admin.headers, { version: '1.0.0' }, { publish: false })
  const user = await userWithToken(app)
  const id = r.id
  const routes: Array<{ method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE'; url: string; payload?: object }> = [
    { method: 'POST', url: '/v1/admin/firmware?hardware_model=NW-1&version=5.0.0' },
    { method: 'GET', url: '/v1/admin/firmware' },
    { method: 'GET', url: `/v1/admin/firmware/${id}` },
    { method: 'PATCH', url: `/v1/admin/firmware/${id}`, payload: { mandatory: true } },
    { method: 'PUT', url: `/v1/admin/firmware/${id}/rollout`, payload: { rollout_percentage: 5 } },
    ...['publish', 'deprecate', 'halt', 'resume', 'rollback'].map((a) => ({
      method: 'POST' as const,
      url: `/v1/admin/firmware/${id}/${a}`,
    })),
    { method: 'DELETE', url: `/v1/admin/firmware/${id}` },
  ]
  const registered = app.printRoutes({ commonPrefix: false }).match(/admin\/firmware/g)?.length ?? 0
  t.ok(registered > 0)
  for (const route of routes) {
    const asUser = await app.inject({
      ...route,
      headers: {
        ...user.headers,
        ...(route.url.includes('version=') ? { 'content-type': 'application/octet-stream' } : {}),
      },
      ...(route.url.includes('version=') ? { payload: image(1000) } : {}),
    })
    t.equal(asUser.statusCode, 403, `${route.method} ${route.url} as a user`)
    t.equal(asUser.json().error, 'forbidden')
    const anonymous = await app.inject({ ...route })
    t.equal(anonymous.statusCode, 401, `${route.method} ${route.url} anonymous`)
  }
  const after = await app.inject({ method: 'GET', url: `/v1/admin/firmware/${id}`, headers: admin.headers })
  t.match(after.json(), { status: 'draft', mandatory: false, rollout_percentage: 100 }, 'nothing changed')
  t.equal((await app.db.select().from(firmwareReleases)).length, 1, 'nothing uploaded')
})

async function until(check: () => Promise<boolean>, deadlineMs = 10_000) {
  const end = Date.now() + deadlineMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached in time')
    await new Promise((r) => setTimeout(r, 20))
  }
}
