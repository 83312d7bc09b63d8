import { Readable } from 'node:stream'
import type { Db } from '../../db/client.ts'
import { inReadScope } from '../../db/replicas.ts'
import { csvZip } from './csv.ts'
import { fhirBundle } from './fhir.ts'
import { CHUNK_BYTES } from './minutes.ts'
import { omhDataPoints } from './omh.ts'

/** The standard formats of the account export besides the NOWATCH JSON document. */
export const EXPORT_FORMATS = ['fhir', 'omh', 'csv'] as const
export type ExportFormat = (typeof EXPORT_FORMATS)[number]

export const EXPORT_FORMATS_DESCRIPTION =
  '`format=fhir`: an HL7 FHIR R4 Bundle (type `collection`, `application/fhir+json`) of the Patient and Observations: ' +
  "one per measurement type and minute (the raw samples as the minute's mean, or total for steps, energy and distance; `effectivePeriod` the minute; `valueQuantity` in UCUM rather than `valueSampledData`, as the vital-signs profile asks), " +
  'coded in LOINC where LOINC has the concept (heart rate 8867-4 `/min`, SpO2 59408-5 `%`, skin temperature as body temperature 8310-5 `Cel` with bodySite wrist, respiratory rate 9279-1 `/min`, steps 55423-8, active energy 41981-2 `kcal`, HRV SDNN 80404-7 `ms`; category `vital-signs` or `activity`), ' +
  "otherwise in the code system `urn:nowatch:fhir:measurement-type` with the API's type names: LOINC has no code for HRV RMSSD (80404-7 is SDNN), a stress score or distance; sleep sessions are Observations of that system too (`sleep_session`: time asleep in `min`, stages, latency and efficiency as components). " +
  '`format=omh`: a JSON array of Open mHealth data points (header with id, creation_date_time, schema_id, acquisition_provenance; bodies per omh:heart-rate:2.0, oxygen-saturation:2.0, body-temperature:3.0, respiratory-rate:2.0, step-count:3.0, calories-burned:2.0 as per-minute values, and sleep-episode:1.1 per sleep session; HRV, distance and stress have no Open mHealth schema and are left out). ' +
  '`format=csv`: a zip with one CSV per data kind (`heart_rate.csv` … with every raw sample, `sleep_sessions.csv`), a header row, units in the column names, UTC timestamps. ' +
  'Check-ins, journal and account records are only in the JSON document.'

export const CONTENT_TYPES: Record<ExportFormat, string> = {
  fhir: 'application/fhir+json; charset=utf-8',
  omh: 'application/json; charset=utf-8',
  csv: 'application/zip',
}

export const FILE_EXTENSIONS: Record<ExportFormat, string> = { fhir: 'fhir.json', omh: 'omh.json', csv: 'csv.zip' }

const toStream = (source: AsyncIterable<string>) => {
  // Made inside the handler: the rows come from the request's replica, if it has one (db/replicas.ts).
  const text = inReadScope(source)
  return Readable.from(
    (async function* toBuffers() {
      for await (const t of text) yield Buffer.from(t, 'utf8')
    })(),
    { objectMode: false, highWaterMark: CHUNK_BYTES },
  )
}

/** The export in a standard format as a stream that reads the rows only as fast as the client takes them. */
export function formatStream(format: ExportFormat, db: Db, userId: string): Readable {
  switch (format) {
    case 'fhir':
      return toStream(fhirBundle(db, userId))
    case 'omh':
      return toStream(omhDataPoints(db, userId))
    case 'csv':
      return csvZip(db, userId)
  }
}
