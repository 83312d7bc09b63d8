/**
 * Uploads committed as groups (issue 23b): live minutes come as many small batches of many users at once, and
 * each of them, alone, costs PostgreSQL a statement to parse and plan, a transaction and a commit for 60 rows.
 * Here uploads that arrive while `inFlight` statements are already running wait, and the next statement takes
 * all of them (up to `maxWeight` samples): one plan, one transaction and one commit for the whole group. A
 * lone upload on a quiet server runs at once, as before, so waiting is only ever for a statement already
 * running; the busier the server, the larger the groups.
 *
 * Each item's answer is its own. A group is one statement, so it commits whole or not at all: if it fails,
 * each of its items runs again alone, and answers (or fails) as it would have without the others. Items of
 * one key (one user) never share a group, in arrival order: the statement writes a user's rows, rollup and
 * change log row once.
 */
export interface GroupCommitOptions<T, R> {
  /** Statements running at once; 0 is taken as 1. */
  inFlight: number
  /** Samples (`weight`) in one group at most; an item heavier than that goes alone. */
  maxWeight: number
  weight: (item: T) => number
  key: (item: T) => string
  /** Runs one group as one statement: one answer per item, in the items' order. */
  run: (items: T[]) => Promise<R[]>
  /** Told when a group of several items failed (they run again alone): for the operator's log. */
  onRefused?: (err: unknown, items: number) => void
}

export interface GroupCommit<T, R> {
  submit(item: T): Promise<R>
}

interface Waiting<T, R> {
  item: T
  /** After its group failed: runs alone. */
  alone: boolean
  resolve: (r: R) => void
  reject: (err: unknown) => void
}

export function groupCommit<T, R>(options: GroupCommitOptions<T, R>): GroupCommit<T, R> {
  const limit = Math.max(1, options.inFlight)
  const queue: Waiting<T, R>[] = []
  let running = 0

  /** The next group, taken out of the queue: the first waiting item and those after it that fit. */
  function take(): Waiting<T, R>[] {
    const first = queue[0]
    if (first.alone) return queue.splice(0, 1)
    const group: Waiting<T, R>[] = []
    const keys = new Set<string>()
    let weight = 0
    for (let i = 0; i < queue.length; ) {
      const w = queue[i]
      const k = options.key(w.item)
      const n = options.weight(w.item)
      // A key already in the group stops that key, not the group: its later items keep their order behind it.
      if (w.alone || keys.has(k) || (group.length > 0 && weight + n > options.maxWeight)) {
        keys.add(k)
        i++
        continue
      }
      keys.add(k)
      weight += n
      group.push(w)
      queue.splice(i, 1)
    }
    return group
  }

  function pump() {
    while (running < limit && queue.length > 0) {
      const group = take()
      running++
      options
        .run(group.map((w) => w.item))
        .then(
          (results) => group.forEach((w, i) => w.resolve(results[i])),
          (err) => {
            if (group.length === 1) {
              group[0].reject(err)
              return
            }
            // Nothing of the group was written: each item again, alone, first in the queue.
            options.onRefused?.(err, group.length)
            queue.unshift(...group.map((w) => ({ ...w, alone: true })))
          },
        )
        .finally(() => {
          running--
          pump()
        })
    }
  }

  return {
    submit(item) {
      return new Promise<R>((resolve, reject) => {
        queue.push({ item, alone: false, resolve, reject })
        pump()
      })
    },
  }
}
