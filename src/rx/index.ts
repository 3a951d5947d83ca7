import { Observable, type OperatorFunction } from 'rxjs'
import type { WriteAhead } from '../write-ahead.js'
import type { ReadableOptions } from '../streams/readable.js'
import type { AppendInput, WalRecord } from '../types.js'

/**
 * A cold Observable of a partition's records: each subscription opens its own reader, and
 * unsubscribing releases it (and its group lease).
 */
export function fromPartition (wal: WriteAhead, p: number, options?: ReadableOptions): Observable<WalRecord> {
  return new Observable<WalRecord>((subscriber) => {
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
 * Appends every value to partition p and emits its offset once durable, in order. Values that
 * arrive in the same turn of the event loop go into one appendBatch, so a fast source still gets
 * group commit.
 */
export function toPartition (wal: WriteAhead, p: number): OperatorFunction<AppendInput, number> {
  return (source) => new Observable<number>((subscriber) => {
    let queue: AppendInput[] = []
    let scheduled = false
    let chain: Promise<void> = Promise.resolve()
    let failed = false
    const flush = (): void => {
      scheduled = false
      const batch = queue
      queue = []
      if (batch.length === 0 || failed) return
      const appended = wal.appendBatch(p, batch)
      // Emissions stay in order even if a later batch is durable first.
      chain = chain.then(() => appended).then((first) => {
        if (!failed) for (let i = 0; i < batch.length; i++) subscriber.next(first + i)
      }, (err: unknown) => {
        failed = true
        subscriber.error(err)
      })
    }
    const sub = source.subscribe({
      next: (value) => {
        queue.push(value)
        if (!scheduled) { scheduled = true; queueMicrotask(flush) }
      },
      error: (err) => {
        flush()
        void chain.then(() => { if (!failed) subscriber.error(err) })
      },
      complete: () => {
        flush()
        void chain.then(() => { if (!failed) subscriber.complete() })
      }
    })
    return () => sub.unsubscribe()
  })
}
