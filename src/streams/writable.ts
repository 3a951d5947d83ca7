import { Writable } from 'streamx'
import type { AppendInput, RecordInput } from '../types.js'

export interface WritableOptions {
  /** Buffered bytes before backpressure (each record's real size). Default 1 MiB. */
  highWaterMark?: number
}

export interface WritableHost {
  appendBatch (p: number, inputs: AppendInput[]): Promise<number>
  readonly maxBatchBytes: number
}

/**
 * Bytes an input will take, close enough for backpressure (highWaterMark) and for splitting a
 * queue that is over maxBatchBytes (appendSplit). streamx calls it twice per chunk, so bytes are
 * told by `ArrayBuffer.isView` and sized by `length`, not by `instanceof` and `byteLength` (equal
 * for a Uint8Array): ~15 ns a record less, a quarter of the stream's cost. A `length` is trusted
 * only as a whole number, so streamx's count of queued bytes always gets back to exactly 0.
 */
export function inputBytes (input: AppendInput): number {
  if (typeof input === 'string') return input.length + 24
  if (typeof input !== 'object' || input === null) return 24
  if (ArrayBuffer.isView(input)) return sizeOf(input) + 24
  const r = input as RecordInput
  return 32 + sizeOf(r.value) + sizeOf(r.key) + (r.headers === undefined || r.headers === null ? 0 : 64)
}

function sizeOf (x: unknown): number {
  if (typeof x === 'string') return x.length
  if (typeof x !== 'object' || x === null) return 0
  const n = (x as { length?: unknown }).length
  return typeof n === 'number' && (n >>> 0) === n ? n : 0
}

/**
 * A partition as a streamx Writable. `_writev` turns every queued chunk into one commit, and calls
 * back only once it is durable, so 'finish' and pipeline()'s callback mean "all on disk".
 */
export class WalWritable extends Writable {
  constructor (private readonly host: WritableHost, readonly partition: number, opts: WritableOptions = {}) {
    super({ highWaterMark: opts.highWaterMark ?? 1024 * 1024, byteLength: inputBytes })
  }

  override _writev (batch: AppendInput[], cb: (err: Error | null) => void): void {
    // One appendBatch for everything queued: sizing each record here first cost as much as the
    // rest of the stream. Only when that is more than one batch may hold (nothing of it was
    // queued then) is it split by size; the pieces still share one commit.
    this.host.appendBatch(this.partition, batch).then(() => cb(null), (err: Error) => {
      if ((err as { code?: string }).code !== 'BATCH_TOO_LARGE' || batch.length === 1) return cb(err)
      this.appendSplit(batch).then(() => cb(null), cb)
    })
  }

  private appendSplit (batch: AppendInput[]): Promise<unknown> {
    const limit = Math.max(1, Math.floor(this.host.maxBatchBytes / 2))
    const pieces: Array<Promise<number>> = []
    let start = 0
    let bytes = 0
    for (let i = 0; i < batch.length; i++) {
      const b = inputBytes(batch[i])
      if (bytes + b > limit && i > start) {
        pieces.push(this.host.appendBatch(this.partition, batch.slice(start, i)))
        start = i
        bytes = 0
      }
      bytes += b
    }
    pieces.push(this.host.appendBatch(this.partition, batch.slice(start)))
    return Promise.all(pieces)
  }
}
