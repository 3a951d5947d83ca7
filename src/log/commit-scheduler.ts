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
}

export class CommitScheduler {
  private readonly dirty = new Set<Committable>()
  private scheduled = false

  mark (log: Committable): void {
    this.dirty.add(log)
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(this.run)
    }
  }

  private readonly run = (): void => {
    this.scheduled = false
    const ready: Committable[] = []
    for (const log of this.dirty) {
      if (log.syncing) continue // re-marked when its sync completes
      this.dirty.delete(log)
      if (log.hasPending) ready.push(log)
    }
    const parallel = ready.length > 1
    for (const log of ready) log.commit(parallel)
  }
}
