import { deflateSync, gzipSync } from 'node:zlib'
import t from 'tap'
import { CATALOGUE, TYPE_NAMES } from '../../db/schema/measurement-catalogue.ts'
import { buildTestApp } from '../helpers/app.ts'
import { userWithToken } from '../helpers/fixtures.ts'
import { ingest, series, upload } from '../helpers/measurement.ts'

t.test('ingest', async (t) => {
  const app = await buildTestApp(t, { env: { MEASUREMENT_BATCH_LIMIT: '500' } })
  const { headers, call } = await userWithToken(app)
  const at = (s: number) => new Date(Date.parse('2024-03-01T08:00:00Z') + s * 1000).toISOString()
  const count = async (type: string, day: string) =>
    (await call('GET', `/v1/measurements?type=${type}&from=${day}T00:00:00Z&to=${day}T23:59:59Z&limit=10000`)).body.data
      .length

  t.test('every type accepts its range ends and refuses values outside', async (t) => {
    let second = 0
    for (const type of TYPE_NAMES) {
      const spec = CATALOGUE[type]
      const ok = await upload(app, headers, [
        { type, timestamp: at(second++), value: spec.min },
        { type, timestamp: at(second++), value: spec.max },
      ])
      t.same(ok.json(), { accepted: 2, duplicates: 0 }, `${type} min and max`)
      const step = 'integer' in spec ? 1 : 0.5
      const bad = await upload(app, headers, [
        { type, timestamp: at(second++), value: spec.min - step },
        { type, timestamp: at(second++), value: spec.max + step },
      ])
      t.equal(bad.statusCode, 400, `${type} outside`)
      t.match(bad.json(), {
        error: 'validation_failed',
        details: [
          { field: 'samples[0].value', problem: `must be between ${spec.min} and ${spec.max} ${spec.unit}` },
          { field: 'samples[1].value', problem: /must be between/ },
        ],
      })
      if ('integer' in spec) {
        const frac = await upload(app, headers, [{ type, timestamp: at(second++), value: spec.min + 0.5 }])
        t.same(frac.json().details, [{ field: 'samples[0].value', problem: 'must be a whole number' }])
      }
    }
    const types = await call('GET', '/v1/measurements/types')
    t.equal(types.body.data.length, TYPE_NAMES.length)
    t.match(
      types.body.data.find((x: { type: string }) => x.type === 'sleep_stage'),
      {
        unit: 'code',
        integer: true,
        codes: { 0: 'awake', 3: 'rem' },
      },
    )
  })

  t.test('a batch with one bad sample stores nothing and names every bad sample', async (t) => {
    const samples = series('stress', '2024-03-02T00:00:00Z', 10, (i) => i * 10)
    samples[3] = { ...samples[3], value: 101 }
    samples[7] = { ...samples[7], type: 'mood' }
    samples[8] = { ...samples[8], timestamp: '1999-12-31T23:59:59Z' }
    const res = await upload(app, headers, samples)
    t.equal(res.statusCode, 400)
    const body = res.json()
    t.equal(body.error, 'validation_failed')
    // Format and range problems come out together, one answer for the whole batch.
    t.same(
      body.details.sort((a: { field: string }, b: { field: string }) => a.field.localeCompare(b.field)),
      [
        { field: 'samples[3].value', problem: 'must be between 0 and 100 score' },
        { field: 'samples[7].type', problem: 'must be equal to one of the allowed values' },
        { field: 'samples[8].timestamp', problem: 'must be between 2000-01-01T00:00:00Z and 24 h from now' },
      ],
    )
    t.equal(await count('stress', '2024-03-02'), 0, 'nothing stored')
    const future = await upload(app, headers, [
      { type: 'stress', timestamp: new Date(Date.now() + 2 * 86400_000).toISOString(), value: 1 },
    ])
    t.equal(future.statusCode, 400)
    const noZone = await upload(app, headers, [{ type: 'stress', timestamp: '2024-03-01T10:00:00', value: 1 }])
    t.match(noZone.json(), { error: 'validation_failed', details: [{ field: 'samples[0].timestamp' }] })
    const nan = await app.inject({
      method: 'POST',
      url: '/v1/measurements',
      headers: { ...headers, 'content-type': 'application/json' },
      payload: '{"samples":[{"type":"stress","timestamp":"2024-03-01T10:00:00Z","value":"5"}]}',
    })
    t.match(nan.json(), { error: 'validation_failed', details: [{ field: 'samples[0].value' }] })
    const extra = await upload(app, headers, [
      { type: 'stress', timestamp: '2024-03-01T10:00:00Z', value: 1, unit: 'x' } as never,
    ])
    t.match(extra.json(), { error: 'validation_failed', details: [{ field: 'samples[0].unit' }] })
    const empty = await upload(app, headers, [])
    t.equal(empty.statusCode, 400)
  })

  t.test('every bad sample of a large batch is listed in the one answer', async (t) => {
    const samples = series('heart_rate', '2024-03-04T00:00:00Z', 400, () => 60)
    for (let i = 0; i < samples.length; i += 2) samples[i] = { ...samples[i], value: 999 }
    for (let i = 1; i < samples.length; i += 4) samples[i] = { ...samples[i], timestamp: '2024-03-04T25:00:00Z' }
    const res = await upload(app, headers, samples)
    t.equal(res.statusCode, 400)
    const fields = new Set(res.json().details.map((d: { field: string }) => d.field))
    t.equal(fields.size, 300, '200 values out of range and 100 malformed timestamps')
    t.ok(fields.has('samples[398].value') && fields.has('samples[397].timestamp'), 'up to the last index')
  })

  t.test('compressed uploads: gzip and deflate accepted, the limit holds after decompression', async (t) => {
    const body = (day: string) => JSON.stringify({ device_id: 'w', samples: series('heart_rate', day, 50, () => 61) })
    const post = (payload: Buffer, encoding: string) =>
      app.inject({
        method: 'POST',
        url: '/v1/measurements',
        headers: { ...headers, 'content-type': 'application/json', 'content-encoding': encoding },
        payload,
      })
    const gz = await post(gzipSync(body('2024-03-05T00:00:00Z')), 'gzip')
    t.same([gz.statusCode, gz.json()], [200, { accepted: 50, duplicates: 0 }], 'gzip')
    const df = await post(deflateSync(body('2024-03-06T00:00:00Z')), 'deflate')
    t.same([df.statusCode, df.json()], [200, { accepted: 50, duplicates: 0 }], 'deflate')
    const again = await post(gzipSync(body('2024-03-05T00:00:00Z')), 'GZIP')
    t.same(again.json(), { accepted: 0, duplicates: 50 }, 're-sent compressed: duplicates')
    // 4 MB limit (10,000 samples): a 5 MB body of spaces compresses to a few kB.
    const bomb = gzipSync(Buffer.concat([Buffer.from('{"samples":['), Buffer.alloc(5_000_000, ' '), Buffer.from(']}')]))
    t.ok(bomb.length < 20_000, `the bomb is small (${bomb.length} bytes)`)
    const big = await post(bomb, 'gzip')
    t.same([big.statusCode, big.json().error], [413, 'payload_too_large'], 'a gzip bomb is 413')
    const broken = await post(Buffer.from('not gzip'), 'gzip')
    t.same([broken.statusCode, broken.json().error], [400, 'invalid_gzip'])
    const brokenDeflate = await post(Buffer.from('not deflate'), 'deflate')
    t.same([brokenDeflate.statusCode, brokenDeflate.json().error], [400, 'invalid_deflate'])
    const br = await post(Buffer.from(body('2024-03-07T00:00:00Z')), 'br')
    t.same([br.statusCode, br.json().error], [415, 'unsupported_encoding'])
    const tooDeep = await post(gzipSync(`${'['.repeat(100)}${']'.repeat(100)}`), 'gzip')
    t.same([tooDeep.statusCode, tooDeep.json().error], [400, 'invalid_json'], 'the JSON rules still hold')
  })

  t.test('the batch limit is configurable', async (t) => {
    const res = await upload(
      app,
      headers,
      series('steps', '2024-03-03T00:00:00Z', 501, () => 1),
    )
    t.same(res.json(), {
      error: 'validation_failed',
      message: 'The request is not valid.',
      details: [{ field: 'samples', problem: 'must not have more than 500 samples' }],
    })
    t.same(
      await ingest(
        app,
        headers,
        series('steps', '2024-03-03T00:00:00Z', 500, () => 1),
      ),
      {
        accepted: 500,
        duplicates: 0,
      },
    )
  })

  t.test('re-sent samples are counted as duplicates, not stored twice', async (t) => {
    const batch = series('heart_rate', '2024-03-04T00:00:00Z', 100, (i) => 60 + (i % 7))
    t.same(await ingest(app, headers, batch), { accepted: 100, duplicates: 0 })
    t.same(await ingest(app, headers, batch), { accepted: 0, duplicates: 100 })
    // Half old, half new; a repeat inside the batch (even with another value) is a duplicate too.
    const next = [...batch.slice(50), ...series('heart_rate', '2024-03-04T00:01:40Z', 50, () => 70)]
    next.push({ ...next[next.length - 1], value: 99 })
    t.same(await ingest(app, headers, next), { accepted: 50, duplicates: 51 })
    // The same timestamp from another device is another series.
    t.same(await ingest(app, headers, batch.slice(0, 10), 'watch-2'), { accepted: 10, duplicates: 0 })
    // Sub-millisecond digits are beyond the stored precision: the same sample.
    t.same(await ingest(app, headers, [{ ...batch[0], timestamp: '2024-03-04T00:00:00.0004Z' }]), {
      accepted: 0,
      duplicates: 1,
    })
    t.equal(await count('heart_rate', '2024-03-04'), 160)
    const agg = await call(
      'GET',
      '/v1/measurements/aggregate?type=heart_rate&from=2024-03-04T00:00:00Z&to=2024-03-05T00:00:00Z&bucket=1d',
    )
    t.equal(agg.body.data[0].count, 160, 'rollup counts each sample once')
    t.equal(agg.body.data[0].max, 70, 'the ignored in-batch repeat (99) is not in the rollup')
  })

  t.test('needs a bearer token', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/v1/measurements', payload: { samples: [] } })
    t.equal(res.statusCode, 401)
  })
})

t.test('the default limit takes a 10,000-sample body', async (t) => {
  const app = await buildTestApp(t)
  const { headers, call } = await userWithToken(app)
  const batch = series('heart_rate', '2024-03-01T00:00:00.123Z', 10_000, (i) => 50 + (i % 100) + 0.25)
  t.same(await ingest(app, headers, batch, 'a-rather-long-device-identifier-0123456789'), {
    accepted: 10_000,
    duplicates: 0,
  })
  const too = await upload(
    app,
    headers,
    series('heart_rate', '2024-03-02T00:00:00Z', 10_001, () => 60),
  )
  t.match(too.json(), { error: 'validation_failed', details: [{ field: 'samples' }] })
})
