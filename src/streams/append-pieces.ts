import { BATCH_HEADER_BYTES } from '../format/batch.js'
import { atRecord, WalError } from '../errors.js'
import type { AppendInput, RecordInput } from '../types.js'

export interface BatchAppender {
  appendBatch (p: number, inputs: AppendInput[]): Promise<number>
  readonly maxBatchBytes: number
}

/** Told, in order, once each piece is durable: its first offset and how many records it holds. */
export type OnPiece = (first: number, count: number) => void

/**
 * Appends everything a stream queued, in order. One appendBatch when it fits, sized by nobody:
 * that is the hot path. Refused as BATCH_TOO_LARGE (nothing of it is then written), it goes
 * again in pieces, each durable before the next is submitted: pieces submitted together could
 * have one refused and the ones after it committed, a hole in the stream. A piece refused again
 * (its size was an estimate) is halved; a single record refused fails with its own error, and
 * nothing after it is appended.
 *
 * A record's error names it by its place in the stream (`where`, `#` for the number; `base` is
 * the place of inputs[0]), not in the batch it happened to share.
 */
export function appendInOrder (host: BatchAppender, p: number, inputs: AppendInput[], onPiece: OnPiece | undefined, base: number, where: string): Promise<void> {
  return host.appendBatch(p, inputs).then((first) => { onPiece?.(first, inputs.length) }, (err: unknown) => {
    if (tooLarge(err) && inputs.length > 1) return appendPieces(host, p, inputs, onPiece)
    throw err
  }).catch((err: unknown) => { throw placed(err, base, where) })
}

function placed (err: unknown, base: number, where: string): unknown {
  if (!(err instanceof WalError) || !recordError(err)) return err
  const i = typeof err.details.index === 'number' ? err.details.index : 0
  return atRecord(err, base + i, where)
}

/** A piece is a slice: its record error's index is made to count from the whole queue's start. */
function fromQueueStart (err: unknown, at: number): unknown {
  return at === 0 ? err : placed(err, at, 'record # of the queue')
}

function recordError (err: WalError): boolean {
  return err.code === 'INVALID_RECORD' || err.code === 'RECORD_TOO_LARGE' || err.code === 'BATCH_TOO_LARGE'
}

async function appendPieces (host: BatchAppender, p: number, inputs: AppendInput[], onPiece?: OnPiece): Promise<void> {
  const limit = Math.max(1, host.maxBatchBytes - BATCH_HEADER_BYTES)
  let start = 0
  let bytes = 0
  for (let i = 0; i < inputs.length; i++) {
    const b = estimate(inputs[i])
    if (bytes + b > limit && i > start) {
      await appendOrHalve(host, p, inputs, start, i, onPiece)
      start = i
      bytes = 0
    }
    bytes += b
  }
  // Estimated to fit whole, yet refused whole: trying it again would only be refused again.
  if (start === 0) await appendHalves(host, p, inputs, 0, inputs.length, onPiece)
  else await appendOrHalve(host, p, inputs, start, inputs.length, onPiece)
}

/** Appends inputs[from, to), halving it while it is refused as too large. */
async function appendOrHalve (host: BatchAppender, p: number, inputs: AppendInput[], from: number, to: number, onPiece?: OnPiece): Promise<void> {
  let first: number
  try {
    first = await host.appendBatch(p, inputs.slice(from, to))
  } catch (err) {
    if (!tooLarge(err) || to - from <= 1) throw fromQueueStart(err, from)
    return appendHalves(host, p, inputs, from, to, onPiece)
  }
  onPiece?.(first, to - from)
}

async function appendHalves (host: BatchAppender, p: number, inputs: AppendInput[], from: number, to: number, onPiece?: OnPiece): Promise<void> {
  const mid = from + ((to - from) >>> 1)
  await appendOrHalve(host, p, inputs, from, mid, onPiece)
  await appendOrHalve(host, p, inputs, mid, to, onPiece)
}

function tooLarge (err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'BATCH_TOO_LARGE'
}

/** A small record's varints (length, timestamp, offset, key, value, header count) and attributes. */
const RECORD_OVERHEAD = 10
/** A header's two length varints. */
const HEADER_OVERHEAD = 2

/**
 * Encoded size of a record, near enough that pieces cut by it are seldom refused: the payload's
 * UTF-8 bytes plus a typical record's varints. Only a queue over maxBatchBytes is sized at all,
 * so exact string lengths are affordable here (streamx's per-chunk sizing is not; see inputBytes).
 * An input of the wrong shape counts what it can: appendBatch refuses it anyway.
 */
function estimate (input: AppendInput): number {
  if (typeof input !== 'object' || input === null || ArrayBuffer.isView(input)) return RECORD_OVERHEAD + bytes(input)
  const r = input as RecordInput
  return RECORD_OVERHEAD + bytes(r.key) + bytes(r.value) + headerBytes(r.headers)
}

function bytes (x: unknown): number {
  if (typeof x === 'string') return Buffer.byteLength(x)
  return ArrayBuffer.isView(x) ? x.byteLength : 0
}

function headerBytes (h: unknown): number {
  if (typeof h !== 'object' || h === null) return 0
  let n = 0
  if (Array.isArray(h)) {
    for (const e of h as unknown[]) {
      if (Array.isArray(e)) n += HEADER_OVERHEAD + bytes(e[0]) + bytes(e[1])
      else if (typeof e === 'object' && e !== null) n += HEADER_OVERHEAD + bytes((e as { key?: unknown }).key) + bytes((e as { value?: unknown }).value)
    }
    return n
  }
  for (const [key, v] of Object.entries(h)) {
    const k = Buffer.byteLength(key)
    if (Array.isArray(v)) for (const x of v as unknown[]) n += HEADER_OVERHEAD + k + bytes(x)
    else if (v !== undefined) n += HEADER_OVERHEAD + k + bytes(v)
  }
  return n
}
