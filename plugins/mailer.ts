import { and, asc, eq, inArray, lte, sql } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import nodemailer, { type Transporter } from 'nodemailer'
import type { DbOrTx } from '../db/client.ts'
import { mailOutbox } from '../db/schema/index.ts'

export interface Mail {
  to: string
  subject: string
  text: string
  /** What caused it (verification, password_reset, share_invite …): for logs and tests. */
  kind: string
}

export interface Mailer {
  /** Queues a message in the caller's transaction: it is sent only if that change commits. */
  enqueue(tx: DbOrTx, mail: Mail): Promise<void>
  /** Sends what is due now; the worker calls it on a timer, tests call it directly. */
  flush(): Promise<{ sent: number; failed: number }>
  /** Drops every message to this address, sent or not (account deletion: the address is personal data). */
  forgetRecipient(tx: DbOrTx, to: string): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    mailer: Mailer
  }
}

const MAX_ATTEMPTS = 8
const BATCH = 20

export default fp(
  async function mailerPlugin(app: FastifyInstance) {
    const { config, db } = app
    // MAIL_TRANSPORT chooses; by default SMTP when SMTP_URL is set, else the dev outbox (config refuses
    // that default in production: there it must be chosen with MAIL_TRANSPORT=log).
    const useSmtp = (config.MAIL_TRANSPORT ?? (config.SMTP_URL ? 'smtp' : 'log')) === 'smtp'
    const transport: Transporter | null =
      useSmtp && config.SMTP_URL ? nodemailer.createTransport(config.SMTP_URL) : null
    if (!transport)
      app.log.info(
        config.NODE_ENV === 'production'
          ? 'MAIL_TRANSPORT=log: e-mail stays in the outbox table (mail_outbox); the log names its kind, never address or body'
          : 'SMTP_URL is not set: e-mail goes to the dev outbox (mail_outbox table and this log)',
      )

    async function deliver(mail: { id: string; to: string; subject: string; text: string; kind: string }) {
      if (transport) {
        await transport.sendMail({ from: config.MAIL_FROM, to: mail.to, subject: mail.subject, text: mail.text })
        return
      }
      // Dev outbox: the message stays in mail_outbox, where a developer reads it. The log names it only:
      // an address is personal data and the body carries one-time codes, neither belongs in a log line.
      app.log.info({ mail: { id: mail.id, kind: mail.kind } }, 'dev outbox: message kept in mail_outbox')
    }

    const mailer: Mailer = {
      async enqueue(tx, mail) {
        await tx.insert(mailOutbox).values(mail)
      },

      async forgetRecipient(tx, to) {
        await tx.delete(mailOutbox).where(eq(mailOutbox.to, to))
      },

      async flush() {
        let sent = 0
        let failed = 0
        // Claim due rows with SKIP LOCKED so several server processes never send one message twice.
        const claimed = await db.transaction(async (tx) => {
          const rows = await tx
            .select()
            .from(mailOutbox)
            .where(and(eq(mailOutbox.status, 'pending'), lte(mailOutbox.nextAttemptAt, sql`now()`)))
            .orderBy(asc(mailOutbox.nextAttemptAt))
            .limit(BATCH)
            .for('update', { skipLocked: true })
          if (rows.length > 0) {
            // Lease them for a minute; a crash mid-send makes them due again.
            await tx
              .update(mailOutbox)
              .set({ nextAttemptAt: sql`now() + interval '60 seconds'`, attempts: sql`${mailOutbox.attempts} + 1` })
              .where(
                inArray(
                  mailOutbox.id,
                  rows.map((r) => r.id),
                ),
              )
          }
          return rows
        })
        for (const row of claimed) {
          try {
            await deliver(row)
            await db
              .update(mailOutbox)
              .set({ status: 'sent', sentAt: new Date(), lastError: null })
              .where(eq(mailOutbox.id, row.id))
            sent++
          } catch (err) {
            failed++
            const attempts = row.attempts + 1
            const backoffS = Math.min(3600, 2 ** attempts * 5)
            app.log.warn({ err, mailId: row.id, attempts }, 'mail delivery failed')
            await db
              .update(mailOutbox)
              .set({
                status: attempts >= MAX_ATTEMPTS ? 'failed' : 'pending',
                lastError: String((err as Error).message ?? err).slice(0, 500),
                nextAttemptAt: sql`now() + make_interval(secs => ${backoffS})`,
              })
              .where(eq(mailOutbox.id, row.id))
          }
        }
        return { sent, failed }
      },
    }
    app.decorate('mailer', mailer)

    if (config.JOBS_ENABLED) {
      let running = false
      const timer = setInterval(() => {
        if (running) return
        running = true
        mailer
          .flush()
          .catch((err) => app.log.warn({ err }, 'mail worker'))
          .finally(() => {
            running = false
          })
      }, 1000)
      timer.unref()
      app.addHook('onClose', async function stopMailWorker() {
        clearInterval(timer)
      })
    }
    app.addHook('onClose', async function closeTransport() {
      transport?.close()
    })
  },
  { name: 'mailer', dependencies: ['config', 'db'] },
)
