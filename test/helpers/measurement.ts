import type { FastifyInstance } from 'fastify'

export interface Sample {
  type: string
  timestamp: string
  value: number
}

/** `count` samples of a type every `stepMs` from `start`, value from its index. */
export function series(
  type: string,
  start: string | number,
  count: number,
  value: (i: number) => number,
  stepMs = 1000,
): Sample[] {
  const t0 = typeof start === 'number' ? start : Date.parse(start)
  return Array.from({ length: count }, (_, i) => ({
    type,
    timestamp: new Date(t0 + i * stepMs).toISOString(),
    value: value(i),
  }))
}

/** POSTs a batch; answers the response. */
export function upload(app: FastifyInstance, headers: Record<string, string>, samples: Sample[], deviceId?: string) {
  return app.inject({
    method: 'POST',
    url: '/v1/measurements',
    headers,
    payload: deviceId === undefined ? { samples } : { device_id: deviceId, samples },
  })
}

/** Uploads and fails loudly unless it was stored. */
export async function ingest(
  app: FastifyInstance,
  headers: Record<string, string>,
  samples: Sample[],
  deviceId?: string,
): Promise<{ accepted: number; duplicates: number }> {
  const res = await upload(app, headers, samples, deviceId)
  if (res.statusCode !== 200) throw new Error(`ingest failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

/** avg/min/max/count/sum of plain values, as the API should compute them. */
export function stats(values: number[]) {
  const sum = values.reduce((a, b) => a + b, 0)
  return { count: values.length, avg: sum / values.length, min: Math.min(...values), max: Math.max(...values), sum }
}
