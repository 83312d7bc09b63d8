import { Readable } from 'node:stream'
import type { Db } from '../../db/client.ts'
import { inReadScope } from '../../db/replicas.ts'
import type { ExportSection } from './export-sections.ts'

// Rows are gathered into chunks of about this size: fewer, larger writes, and a bounded buffer.
const CHUNK_BYTES = 64 * 1024

/**
 * The export document as text, written section by section while the rows are read:
 * `{"format":"nowatch-export","version":1,"exported_at":…,"user_id":…,"sections":{"profile":[…],…}}`.
 */
export async function* exportDocument(db: Db, userId: string, sections: ExportSection[]): AsyncGenerator<string> {
  let buf = `{"format":"nowatch-export","version":1,"exported_at":${JSON.stringify(new Date().toISOString())},"user_id":${JSON.stringify(userId)},"sections":{`
  for (const [i, section] of sections.entries()) {
    buf += `${i ? ',' : ''}${JSON.stringify(section.name)}:[`
    let first = true
    for await (const row of section.rows(db, userId)) {
      buf += (first ? '' : ',') + JSON.stringify(row)
      first = false
      if (buf.length >= CHUNK_BYTES) {
        yield buf
        buf = ''
      }
    }
    buf += ']'
  }
  yield `${buf}}}`
}

/**
 * A readable stream of the document. It pulls the next rows only when the client has taken the
 * previous chunks (back-pressure), so memory stays flat whatever the size of the account.
 */
export function exportStream(db: Db, userId: string, sections: ExportSection[]): Readable {
  // Made inside the handler: the rows come from the request's replica, if it has one (db/replicas.ts).
  const gen = inReadScope(exportDocument(db, userId, sections))
  return Readable.from(
    (async function* toBuffers() {
      for await (const text of gen) yield Buffer.from(text, 'utf8')
    })(),
    { objectMode: false, highWaterMark: CHUNK_BYTES },
  )
}
