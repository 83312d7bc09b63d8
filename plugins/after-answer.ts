import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

export interface AfterAnswer {
  /**
   * Runs `task` once this request's answer has been sent. For the routes whose answer must not tell
   * whether an account exists (forgot password, resend verification, register): the per-account work
   * (look the account up, issue a code, queue the mail) happens after the answer, so both paths run
   * the same code until then and the answer's timing tells nothing (OWASP Forgot Password Cheat Sheet:
   * "ensure that responses return in a consistent amount of time … e.g. an asynchronous queue").
   * A failure is logged; a crash between the answer and the task loses it (the person asks again).
   */
  run(request: FastifyRequest, name: string, task: () => Promise<void>): void
  /** Resolves when every task started so far has ended: for tests, and awaited when the app closes. */
  idle(): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    afterAnswer: AfterAnswer
  }
}

export default fp(
  async function afterAnswerPlugin(app: FastifyInstance) {
    const queued = new WeakMap<FastifyRequest, Array<{ name: string; task: () => Promise<void> }>>()
    const running = new Set<Promise<void>>()

    app.decorate('afterAnswer', {
      run(request, name, task) {
        const list = queued.get(request)
        if (list) list.push({ name, task })
        else queued.set(request, [{ name, task }])
      },
      async idle() {
        while (running.size > 0) await Promise.allSettled([...running])
      },
    } satisfies AfterAnswer)

    // onResponse runs once the answer has been handed to the socket; the tasks start on the next turn of
    // the event loop, after whatever else that answer set off (an embedded database would otherwise
    // hold the loop before the answer's last bytes are on their way).
    app.addHook('onResponse', function runAfterAnswer(request, _reply, done) {
      const list = queued.get(request)
      if (list) {
        queued.delete(request)
        for (const { name, task } of list) {
          const p: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
            .then(task)
            .catch((err) => request.log.error({ err, task: name }, 'a task after the answer failed'))
            .finally(() => running.delete(p))
          running.add(p)
        }
      }
      done()
    })

    app.addHook('onClose', async function drainAfterAnswer() {
      await app.afterAnswer.idle()
    })
  },
  { name: 'after-answer' },
)
