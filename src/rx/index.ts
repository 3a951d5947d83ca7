import { Observable, type OperatorFunction } from 'rxjs'
import type { WriteAhead } from '../write-ahead.js'
import { invalidOption } from '../errors.js'
import type { ReadableOptions } from '../streams/readable.js'
import type { AppendInput, WalRecord } from '../types.js'
import { appendInOrder, type BatchAppender } from '../streams/append-pieces.js'

/**
 * A cold Observable of a partition's records: each subscription opens its own reader, and
 * unsubscribing releases it (and its group lease).
 */
export function fromPartition (wal: WriteAhead, p: number, options?: ReadableOptions): Observable<WalRecord> {
  return new Observable<WalRecord>((subscriber) => {
    // RxJS has no backpressure: the reader hands every record on at once, and operators such as
    // concatMap queue them. autoCommit counts a record handed on as processed, so it would commit
    // records still waiting in that queue, which a crash then loses (999 committed after 9 of
    // 1,000 processed). Only the consumer knows what it has processed: it commits.
    if ((options as { autoCommit?: unknown } | null | undefined)?.autoCommit !== undefined) {
      subscriber.error(invalidOption('autoCommit', 'fromPartition cannot take it: RxJS has no backpressure, so every record is handed on at once and autoCommit would commit records your operators have not processed yet (a crash would lose them); commit after processing, with wal.group(name).commit(p, rec.offset + 1)'))
      return
    }
    let rs: ReturnType<WriteAhead['readable']>
    try {
      rs = wal.readable(p, options)
    } catch (err) {
      subscriber.error(err)
      return
    }
    rs.on('data', (rec) => subscriber.next(rec as WalRecord))
    rs.on('end', () => subscriber.complete())
    rs.on('error', (err: Error) => subscriber.error(err))
    return () => { rs.destroy() }
  })
}

/**
 * Appends every value to partition p and emits its offset once durable, in order. What arrives
 * while an append is in flight (or in the same turn, for the first) goes into the next
 * appendBatch, so a fast source still gets group commit. One append at a time: a batch refused
 * must not be overtaken by a later one, which would leave a hole, or put records out of order
 * once the refused one is retried in pieces (see appendInOrder).
 */
export function toPartition (wal: WriteAhead, p: number): OperatorFunction<AppendInput, number> {
  return (source) => new Observable<number>((subscriber) => {
    const host: BatchAppender = { appendBatch: (q, inputs) => wal.appendBatch(q, inputs), maxBatchBytes: wal.options.maxBatchBytes }
    const emit = (first: number, count: number): void => { for (let i = 0; i < count; i++) subscriber.next(first + i) }
    let queue: AppendInput[] = []
    let taken = 0
    let draining: Promise<void> | null = null
    let failed = false
    const drain = async (): Promise<void> => {
      await null // the rest of this turn joins the first batch
      while (queue.length > 0 && !failed) {
        const batch = queue
        queue = []
        const base = taken
        taken += batch.length
        try {
          await appendInOrder(host, p, batch, emit, base, 'value # of the source')
        } catch (err) {
          failed = true
          subscriber.error(err)
        }
      }
      // Set in the same step as the loop's last check: a value queued after it starts a new drain.
      draining = null
    }
    const schedule = (): Promise<void> => {
      draining ??= drain()
      return draining
    }
    const sub = source.subscribe({
      next: (value) => {
        queue.push(value)
        void schedule()
      },
      error: (err) => {
        void schedule().then(() => { if (!failed) subscriber.error(err) })
      },
      complete: () => {
        void schedule().then(() => { if (!failed) subscriber.complete() })
      }
    })
    return () => sub.unsubscribe()
  })
}
