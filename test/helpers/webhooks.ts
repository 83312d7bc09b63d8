import { type IncomingHttpHeaders, type Server, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'

export interface Delivery {
  id: string
  timestamp: string
  signature: string
  body: string
  headers: IncomingHttpHeaders
  json: { type: string; timestamp: string; data: Record<string, unknown> }
}

/** What the receiver answers next: a status, or `hang` (never answers: the sender's timeout). */
export type Answer = number | 'hang'

/**
 * A webhook receiver on loopback (tests run with WEBHOOK_ALLOW_PRIVATE_TARGETS=true). Each request is
 * kept; `verify(secret)` checks every one with the `standardwebhooks` package, a client nobody here wrote.
 * Answers 200 unless told otherwise with `answer(...)`.
 */
export async function startReceiver() {
  const deliveries: Delivery[] = []
  const answers: Answer[] = []
  const hanging: Array<() => void> = []
  const waiters: Array<{ n: number; resolve: () => void }> = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      deliveries.push({
        id: String(req.headers['webhook-id']),
        timestamp: String(req.headers['webhook-timestamp']),
        signature: String(req.headers['webhook-signature']),
        body,
        headers: req.headers,
        json: JSON.parse(body),
      })
      for (const w of waiters.splice(0)) {
        if (deliveries.length >= w.n) w.resolve()
        else waiters.push(w)
      }
      const answer = answers.shift() ?? 200
      if (answer === 'hang') {
        hanging.push(() => res.destroy())
        return
      }
      res.statusCode = answer
      res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    deliveries,
    answer(...next: Answer[]) {
      answers.push(...next)
    },
    /** Waits for the n-th delivery (the worker of another process sends on its own time). */
    received(n: number): Promise<void> {
      if (deliveries.length >= n) return Promise.resolve()
      return new Promise((resolve) => waiters.push({ n, resolve }))
    },
    /** Every delivery verified with `secret` (standardwebhooks' Webhook.verify throws on a bad one). */
    verify(secret: string, delivery: Delivery) {
      return new Webhook(secret).verify(delivery.body, {
        'webhook-id': delivery.id,
        'webhook-timestamp': delivery.timestamp,
        'webhook-signature': delivery.signature,
      })
    },
    async close() {
      for (const h of hanging) h()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

export type Receiver = Awaited<ReturnType<typeof startReceiver>>
