/**
 * Group commit across partitions. Appends only queue and mark their partition; commits run on the
 * next turn of the event loop (setImmediate), after every append issued in this turn has queued,
 * so concurrent writers share one write and one fdatasync.
 *
 * With one partition to commit, the sync runs inline on the main thread: a thread-pool round trip
 * costs ~40-80 µs here, close to the sync itself. With several, each partition's fdatasync goes to
 * the thread pool so they run in parallel instead of serialising behind each other.
 */
export interface Committable {
  /** `parallel`: sync on the thread pool and call `done` later; otherwise sync inline. */
  commit (parallel: boolean): void
  readonly hasPending: boolean
  readonly syncing: boolean
  /** Whether the log is in the scheduler's queue (kept by the scheduler). */
  queued: boolean
}

/**
 * Arrays and a flag on each log rather than a Set: this runs once per commit, and a Set that
 * empties and refills reallocates its table each time (garbage on every serial append).
 */
export class CommitScheduler {
  private dirty: Committable[] = []
  private spare: Committable[] = []
  private scheduled = false

  mark (log: Committable): void {
    if (!log.queued) {
      log.queued = true
      this.dirty.push(log)
    }
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(this.run)
    }
  }

  private readonly run = (): void => {
    this.scheduled = false
    const logs = this.dirty
    this.dirty = this.spare
    let ready = 0
    for (let i = 0; i < logs.length; i++) {
      const log = logs[i]
      // A syncing log stays queued; it is marked again when its sync completes.
      if (log.syncing) { this.dirty.push(log); continue }
      log.queued = false
      if (log.hasPending) logs[ready++] = log
    }
    logs.length = ready
    const parallel = ready > 1
    try {
      for (let i = 0; i < ready; i++) logs[i].commit(parallel)
    } finally {
      // Always handed back empty: `dirty` and `spare` must never be the same array.
      logs.length = 0
      this.spare = logs
    }
  }
}
