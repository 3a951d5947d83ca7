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
 * Bytes an input will take, for highWaterMark; cheap, close enough for backpressure. streamx calls
 * it twice per chunk, so it reads `length`, not `byteLength` (equal for a Uint8Array), and skips
 * `instanceof`: both getters and the prototype walk cost ~15 ns a record, a quarter of the stream.
 */
export function inputBytes (input: AppendInput): number {
  if (typeof input === 'string') return input.length + 24
  if (typeof input !== 'object' || input === null) return 24
  const n = (input as { length?: unknown }).length
  if (typeof n === 'number') return n + 24
  const r = input as RecordInput
  return 32 + sizeOf(r.value) + sizeOf(r.key) + (r.headers === undefined || r.headers === null ? 0 : 64)
}

function sizeOf (x: unknown): number {
  if (typeof x === 'string') return x.length
  if (typeof x !== 'object' || x === null) return 0
  const n = (x as { length?: unknown }).length
  return typeof n === 'number' ? n : 0
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
