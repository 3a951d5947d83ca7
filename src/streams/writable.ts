import { Writable } from 'streamx'
import { invalidArgument, invalidOption } from '../errors.js'
import type { AppendInput, RecordInput } from '../types.js'
import { appendInOrder, type BatchAppender } from './append-pieces.js'
import { kindOf, plainObject } from '../options.js'

export interface WritableOptions {
  /** Buffered bytes before backpressure (each record's real size). Default 1 MiB. */
  highWaterMark?: number
}

/**
 * Bytes an input will take, close enough for backpressure (highWaterMark). streamx calls it twice
 * per chunk, so bytes are told by `ArrayBuffer.isView` and sized by `length`, not by `instanceof`
 * and `byteLength` (equal for a Uint8Array): ~15 ns a record less, a quarter of the stream's cost.
 * A `length` is trusted only as a whole number, so streamx's count of queued bytes always gets
 * back to exactly 0.
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

function highWaterMark (opts: unknown): number {
  if (opts === undefined) return 1024 * 1024
  if (!plainObject(opts)) throw invalidOption('options', `writable() takes a plain object { highWaterMark? } or nothing, got ${kindOf(opts)}`)
  for (const k of Object.keys(opts as object)) if (k !== 'highWaterMark') throw invalidOption(k, 'unknown option of writable(); it takes { highWaterMark? }')
  const hwm = (opts as WritableOptions).highWaterMark
  if (hwm === undefined) return 1024 * 1024
  if (typeof hwm !== 'number' || !Number.isSafeInteger(hwm) || hwm < 1) {
    throw invalidOption('highWaterMark', `must be a positive integer number of bytes, got ${String(hwm)}`)
  }
  return hwm
}

/**
 * A partition as a streamx Writable. `_writev` turns every queued chunk into one commit, and calls
 * back only once it is durable, so 'finish' and pipeline()'s callback mean "all on disk". A queue
 * over maxBatchBytes is appended in pieces, one commit each, in order (see appendInOrder).
 */
export class WalWritable extends Writable {
  /** Chunks handed to _writev so far: a refused record is named by its place in the stream. */
  private written = 0
  private ended = false

  constructor (private readonly host: BatchAppender, readonly partition: number, opts?: WritableOptions) {
    super({ highWaterMark: highWaterMark(opts), byteLength: inputBytes })
  }

  /**
   * streamx drops a write after end() without a word, and 'finish' then means "all on disk" for
   * a stream that silently lost a record. Refuse it as Node's own streams do: the stream fails.
   * Once it has finished and closed there is no stream left to fail, so the call throws.
   */
  override write (data: AppendInput): boolean {
    if (!this.ended) return super.write(data)
    const err = invalidArgument(`write() after end() on the writable of partition ${this.partition}: the record was not appended`, { partition: this.partition })
    if (this.destroyed) throw err
    // Failing already (this write's error, or another's): a write is refused as streamx refuses one.
    if (!this.destroying) this.destroy(err)
    return false
  }

  override end (data?: unknown): this {
    super.end(data)
    this.ended = true
    return this
  }

  override _writev (batch: AppendInput[], cb: (err: Error | null) => void): void {
    // No sizing here: doing it per record cost as much as the rest of the stream. Only a queue
    // refused as too large is sized, and split.
    const base = this.written
    this.written += batch.length
    appendInOrder(this.host, this.partition, batch, undefined, base, 'chunk # written to the stream').then(() => cb(null), cb)
  }
}
