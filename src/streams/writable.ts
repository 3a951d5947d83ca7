import { Writable } from 'streamx'
import type { AppendInput } from '../types.js'

export interface WritableOptions {
  /** Buffered bytes before backpressure (each record's real size). Default 1 MiB. */
  highWaterMark?: number
}

export interface WritableHost {
  appendBatch (p: number, inputs: AppendInput[]): Promise<number>
  readonly maxBatchBytes: number
}

/** Bytes an input will take, for highWaterMark; cheap, close enough for backpressure. */
export function inputBytes (input: AppendInput): number {
  if (typeof input === 'string') return input.length + 24
  if (input instanceof Uint8Array) return input.byteLength + 24
  if (input === null || typeof input !== 'object') return 24
  const v = input.value as unknown
  const k = input.key as unknown
  const size = (x: unknown): number => typeof x === 'string' ? x.length : x instanceof Uint8Array ? x.byteLength : 0
  return 32 + size(v) + size(k) + (input.headers === undefined || input.headers === null ? 0 : 64)
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
