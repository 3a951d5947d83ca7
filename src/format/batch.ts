/**
 * Record batch format (version 1). All integers big-endian. One batch is written and checksummed
 * as a unit, so a batch is either wholly valid or rejected: that is what makes appendBatch atomic.
 *
 *   offset  size  field
 *   0       4     length            total bytes of the batch, this field included (>= 44)
 *   4       4     crc               CRC32C (Castagnoli) of bytes [8, length)
 *   8       1     magic             0x57 ('W'); never 0, so zero-filled space never parses as a batch
 *   9       1     attributes        bit 0: a checkpoint section follows the records
 *                                   bit 1: seal batch (ends a segment; see segment-file.ts)
 *   10      2     reserved          0
 *   12      8     baseOffset        offset of the first record (u64)
 *   20      4     lastOffsetDelta   offset of the last record minus baseOffset
 *   24      4     recordCount
 *   28      8     firstTimestamp    ms since epoch (i64), timestamp of the first record
 *   36      8     maxTimestamp      largest record timestamp in the batch (i64)
 *   44      ...   records, then the checkpoint section if attribute bit 0 is set
 *
 * Each record is Kafka's v2 record, varints zigzag-encoded:
 *   varint length (of the rest of the record) | int8 attributes (0) | varlong timestampDelta
 *   | varint offsetDelta | varint keyLength (-1 = null) | key | varint valueLength (-1 = null) | value
 *   | varint headerCount | per header: varint keyLength | key (UTF-8) | varint valueLength (-1 = null) | value
 *
 * Offset deltas may skip numbers: explicit offsets (an offset-preserving Kafka mirror) leave gaps.
 *
 * Checkpoint section: u32 count | per checkpoint: u16 nameLength | name (UTF-8) | u32 valueLength | value.
 * A batch may hold no records and only checkpoints: the first batch of every segment is such a
 * batch, carrying every checkpoint forward, so recovery finds them all in the newest segment.
 */
import { crc32c } from './crc.js'
import type { NormalRecord } from '../input.js'

export const BATCH_HEADER_BYTES = 44
export const BATCH_MAGIC = 0x57
export const ATTR_CHECKPOINT = 1
export const ATTR_SEAL = 2

const TWO_32 = 0x1_0000_0000

export function writeU64 (buf: Buffer, n: number, pos: number): void {
  const hi = Math.floor(n / TWO_32)
  buf.writeInt32BE(hi | 0, pos)
  buf.writeUInt32BE(n - hi * TWO_32, pos + 4)
}

export function readU64 (buf: Buffer, pos: number): number {
  return buf.readInt32BE(pos) * TWO_32 + buf.readUInt32BE(pos + 4)
}

function zigzag (n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1
}

function varintSize (n: number): number {
  let z = zigzag(n)
  let size = 1
  while (z >= 0x80) { z = Math.floor(z / 128); size++ }
  return size
}

function writeVarint (buf: Buffer, n: number, pos: number): number {
  let z = zigzag(n)
  while (z >= 0x80) {
    buf[pos++] = (z & 0x7f) | 0x80
    z = Math.floor(z / 128)
  }
  buf[pos++] = z
  return pos
}

/** Non-negative numbers below this take at most three varint bytes (zigzag below 2^21). */
const SMALL_VARINT = 1 << 20

function smallVarintSize (n: number): number {
  return n < 64 ? 1 : n < 8192 ? 2 : 3
}

/** writeVarint for 0 <= n < SMALL_VARINT, without the loop. */
function writeSmallVarint (buf: Buffer, n: number, pos: number): number {
  const z = n * 2
  if (z < 0x80) { buf[pos] = z; return pos + 1 }
  buf[pos] = (z & 0x7f) | 0x80
  if (z < 0x4000) { buf[pos + 1] = z >>> 7; return pos + 2 }
  buf[pos + 1] = ((z >>> 7) & 0x7f) | 0x80
  buf[pos + 2] = z >>> 14
  return pos + 3
}

/**
 * Copies `src` into `buf` at `pos`; returns the position after it. Keys, header keys and header
 * values are mostly a few bytes, where a loop beats Buffer#copy's and set's fixed cost (~10 ns).
 */
function copyBytes (buf: Buffer, src: Uint8Array, pos: number): number {
  const n = src.length
  if (n < 32) {
    for (let i = 0; i < n; i++) buf[pos + i] = src[i]
  } else {
    buf.set(src, pos)
  }
  return pos + n
}

/** Bytes a record takes in a batch, its length prefix included. */
export function recordSize (rec: NormalRecord, offsetDelta: number, timestampDelta: number): number {
  const body = bodySize(rec, offsetDelta, timestampDelta)
  return varintSize(body) + body
}

function bodySize (rec: NormalRecord, offsetDelta: number, timestampDelta: number): number {
  let n = 1 + varintSize(timestampDelta) + varintSize(offsetDelta)
  n += rec.key === null ? 1 : varintSize(rec.key.length) + rec.key.length
  n += rec.value === null ? 1 : varintSize(rec.value.length) + rec.value.length
  const hk = rec.headerKeys
  n += varintSize(hk.length)
  for (let i = 0; i < hk.length; i++) {
    const v = rec.headerValues[i]
    n += varintSize(hk[i].length) + hk[i].length + (v === null ? 1 : varintSize(v.length) + v.length)
  }
  return n
}

/** Encoder buffers up to this size are kept whatever the commits that follow. */
const KEEP_BYTES = 1024 * 1024

/**
 * Encodes batches back to back into one growing buffer, so a commit is a single write.
 * Encoding happens when an append arrives, not at commit time, so the commit only checksums
 * and writes.
 */
export class BatchEncoder {
  buf: Buffer
  length = 0
  private batchStart = -1
  private baseOffset = 0
  private firstTimestamp = 0
  private maxTimestamp = 0
  private lastOffsetDelta = 0
  private count = 0
  private readonly saved = new Float64Array(4)

  constructor (private readonly initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes)
  }

  get inBatch (): boolean { return this.batchStart >= 0 }
  get currentBatchBytes (): number { return this.batchStart < 0 ? 0 : this.length - this.batchStart }
  get currentBaseOffset (): number { return this.baseOffset }
  /** The largest record timestamp of the open batch, or of the one closeBatch() just closed. */
  get batchMaxTimestamp (): number { return this.maxTimestamp }

  reset (): void {
    // A burst's buffer is let go once commits are small again: kept, every log would hold the
    // largest commit it ever made. Steady large commits keep theirs (no copy on every commit).
    if (this.buf.length > KEEP_BYTES && this.length < this.buf.length / 4) this.buf = Buffer.allocUnsafe(this.initialBytes)
    this.length = 0
    this.batchStart = -1
  }

  /** Drops the open batch (its header and records), keeping earlier closed batches. */
  abandonBatch (): void {
    if (this.batchStart < 0) return
    this.length = this.batchStart
    this.batchStart = -1
  }

  /**
   * Saves the state to undo an encode that turns out too large for its batch (one slot, not an
   * object: this runs on every append, and its garbage adds to young-generation collections).
   */
  save (): void {
    this.saved[0] = this.length; this.saved[1] = this.count; this.saved[2] = this.lastOffsetDelta; this.saved[3] = this.maxTimestamp
  }

  /** Back to the state of the last save(). */
  restore (): void {
    this.length = this.saved[0]; this.count = this.saved[1]; this.lastOffsetDelta = this.saved[2]; this.maxTimestamp = this.saved[3]
  }

  get recordCount (): number { return this.count }

  private ensure (extra: number): void {
    const need = this.length + extra
    if (need <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < need) size *= 2
    const next = Buffer.allocUnsafe(size)
    this.buf.copy(next, 0, 0, this.length)
    this.buf = next
  }

  beginBatch (baseOffset: number, firstTimestamp: number): void {
    this.ensure(BATCH_HEADER_BYTES)
    this.batchStart = this.length
    this.length += BATCH_HEADER_BYTES
    this.baseOffset = baseOffset
    this.firstTimestamp = firstTimestamp
    this.maxTimestamp = firstTimestamp
    this.lastOffsetDelta = 0
    this.count = 0
  }

  /** Size the record would add to the open batch (for the maxBatchBytes check). */
  sizeOf (rec: NormalRecord, offset: number): number {
    return recordSize(rec, offset - this.baseOffset, rec.timestamp - this.firstTimestamp)
  }

  addRecord (rec: NormalRecord, offset: number): void {
    const offsetDelta = offset - this.baseOffset
    const tsDelta = rec.timestamp - this.firstTimestamp
    const body = bodySize(rec, offsetDelta, tsDelta)
    this.ensure(body + 5)
    const buf = this.buf
    let pos = writeVarint(buf, body, this.length)
    buf[pos++] = 0
    pos = writeVarint(buf, tsDelta, pos)
    pos = writeVarint(buf, offsetDelta, pos)
    if (rec.key === null) {
      buf[pos++] = 1 // zigzag(-1)
    } else {
      pos = writeVarint(buf, rec.key.length, pos)
      pos = copyBytes(buf, rec.key, pos)
    }
    if (rec.value === null) {
      buf[pos++] = 1
    } else {
      pos = writeVarint(buf, rec.value.length, pos)
      pos = copyBytes(buf, rec.value, pos)
    }
    const hk = rec.headerKeys
    pos = writeVarint(buf, hk.length, pos)
    for (let i = 0; i < hk.length; i++) {
      pos = writeVarint(buf, hk[i].length, pos)
      pos = copyBytes(buf, hk[i], pos)
      const v = rec.headerValues[i]
      if (v === null) {
        buf[pos++] = 1
      } else {
        pos = writeVarint(buf, v.length, pos)
        pos = copyBytes(buf, v, pos)
      }
    }
    this.length = pos
    if (rec.timestamp > this.maxTimestamp) this.maxTimestamp = rec.timestamp
    this.lastOffsetDelta = offsetDelta
    this.count++
  }

  /**
   * The fast path for a plain value (no key, no headers): the common case of appendBatch of
   * Buffers, without building a record object per input.
   */
  addValue (value: Uint8Array, offset: number, timestamp: number): void {
    const offsetDelta = offset - this.baseOffset
    const tsDelta = timestamp - this.firstTimestamp
    const len = value.length
    const body = 3 + (tsDelta === 0 ? 1 : varintSize(tsDelta)) + (offsetDelta < 64 ? 1 : varintSize(offsetDelta)) + (len < 64 ? 1 : varintSize(len)) + len
    this.ensure(body + 5)
    const buf = this.buf
    let pos = body < 64 ? (buf[this.length] = body * 2, this.length + 1) : writeVarint(buf, body, this.length)
    buf[pos++] = 0
    pos = tsDelta === 0 ? (buf[pos] = 0, pos + 1) : writeVarint(buf, tsDelta, pos)
    pos = offsetDelta < 64 ? (buf[pos] = offsetDelta * 2, pos + 1) : writeVarint(buf, offsetDelta, pos)
    buf[pos++] = 1 // key: null
    pos = len < 64 ? (buf[pos] = len * 2, pos + 1) : writeVarint(buf, len, pos)
    buf.set(value, pos)
    pos += len
    buf[pos++] = 0 // no headers
    this.length = pos
    if (timestamp > this.maxTimestamp) this.maxTimestamp = timestamp
    this.lastOffsetDelta = offsetDelta
    this.count++
  }

  /**
   * addValue for a run of plain values with contiguous offsets from `first` and one timestamp,
   * the shape of appendBatch of Buffers: the per-record state stays in locals, and varints of at
   * most three bytes (offset deltas and record sizes under 2^20) are written without a loop.
   */
  addValues (values: Uint8Array[], first: number, timestamp: number): void {
    const n = values.length
    if (n === 0) return
    const tsDelta = timestamp - this.firstTimestamp
    if (tsDelta !== 0) { for (let i = 0; i < n; i++) this.addValue(values[i], first + i, timestamp); return }
    const delta0 = first - this.baseOffset
    let buf = this.buf
    let pos = this.length
    for (let i = 0; i < n; i++) {
      const value = values[i]
      const len = value.length
      const d = delta0 + i
      // attributes, timestamp delta, null key and header count are a byte each.
      const body = 4 + smallVarintSize(d) + smallVarintSize(len) + len
      if (d < SMALL_VARINT && body < SMALL_VARINT) {
        if (pos + body + 3 > buf.length) {
          this.length = pos
          this.ensure(body + 3)
          buf = this.buf
        }
        pos = writeSmallVarint(buf, body, pos)
        buf[pos++] = 0 // attributes
        buf[pos++] = 0 // timestamp delta
        pos = writeSmallVarint(buf, d, pos)
        buf[pos++] = 1 // key: null
        pos = writeSmallVarint(buf, len, pos)
        buf.set(value, pos)
        pos += len
        buf[pos++] = 0 // no headers
      } else {
        this.length = pos
        this.addValue(value, first + i, timestamp)
        buf = this.buf // addValue may have grown it
        pos = this.length
        this.count--
      }
    }
    this.length = pos
    if (timestamp > this.maxTimestamp) this.maxTimestamp = timestamp
    this.lastOffsetDelta = delta0 + n - 1
    this.count += n
  }

  /** Closes the open batch: header and checksum. Returns its [start, end) in `buf`. */
  endBatch (checkpoints?: Map<string, Buffer>, attributes = 0): { start: number, end: number, maxTimestamp: number } {
    const start = this.closeBatch(checkpoints, attributes)
    return { start, end: this.length, maxTimestamp: this.maxTimestamp }
  }

  /** endBatch() without the result object, for the append path: returns the batch's start; it ends at `length`. */
  closeBatch (checkpoints?: Map<string, Buffer>, attributes = 0): number {
    if (checkpoints !== undefined && checkpoints.size > 0) {
      attributes |= ATTR_CHECKPOINT
      let size = 4
      for (const [name, value] of checkpoints) size += 2 + Buffer.byteLength(name) + 4 + value.length
      this.ensure(size)
      const buf = this.buf
      let pos = this.length
      buf.writeUInt32BE(checkpoints.size, pos); pos += 4
      for (const [name, value] of checkpoints) {
        const n = buf.write(name, pos + 2)
        buf.writeUInt16BE(n, pos); pos += 2 + n
        buf.writeUInt32BE(value.length, pos); pos += 4
        pos += value.copy(buf, pos)
      }
      this.length = pos
    }
    const start = this.batchStart
    const buf = this.buf
    buf.writeUInt32BE(this.length - start, start)
    buf[start + 8] = BATCH_MAGIC
    buf[start + 9] = attributes
    buf.writeUInt16BE(0, start + 10)
    writeU64(buf, this.baseOffset, start + 12)
    buf.writeUInt32BE(this.lastOffsetDelta, start + 20)
    buf.writeUInt32BE(this.count, start + 24)
    writeU64(buf, this.firstTimestamp, start + 28)
    writeU64(buf, this.maxTimestamp, start + 36)
    buf.writeUInt32BE(crc32c(buf, start + 8, this.length), start + 4)
    this.batchStart = -1
    return start
  }
}

export interface BatchHeader {
  length: number
  crc: number
  attributes: number
  baseOffset: number
  lastOffsetDelta: number
  recordCount: number
  firstTimestamp: number
  maxTimestamp: number
}

export type HeaderCheck = 'ok' | 'zero' | 'short' | 'bad'

/**
 * The largest batch length a reader accepts. `maxBatchBytes` bounds what is written, not what is
 * read: a log may hold batches written under a larger limit than the one it is reopened with, and
 * a length that runs past the end of its file is rejected anyway (so garbage never costs more than
 * reading the rest of that file).
 */
export const BATCH_READ_LIMIT = 2 ** 31 - 1

/** The largest offset a batch can hold above its base offset (lastOffsetDelta is a u32). */
export const MAX_OFFSET_DELTA = 2 ** 32 - 1

type Checkpoints = Map<string, Buffer> | null | undefined

/** Bytes the checkpoint section of a batch takes, for the union of both maps (later values win). */
/** Bytes one checkpoint takes in a batch's checkpoint section: name length, name, value length, value. */
export function checkpointEntryBytes (name: string, value: Uint8Array): number {
  return 2 + Buffer.byteLength(name) + 4 + value.length
}

export function checkpointSectionBytes (a: Checkpoints, b?: Checkpoints): number {
  // Every append asks, and almost none carries checkpoints: answer those without allocating.
  if ((a == null || a.size === 0) && (b == null || b.size === 0)) return 0
  const sizes = new Map<string, number>()
  for (const m of [a, b]) if (m != null) for (const [name, value] of m) sizes.set(name, checkpointEntryBytes(name, value))
  let n = 4
  for (const v of sizes.values()) n += v
  return n
}

/**
 * Checks what can be checked without the body: 'zero' means unwritten space (the log's end),
 * 'short' that fewer than 44 bytes remain, 'bad' that the header cannot belong to a batch.
 */
export function checkHeader (buf: Buffer, pos: number, available: number, maxBatchBytes: number): HeaderCheck {
  if (available < 4) return available > 0 && buf.readUIntBE(pos, available) === 0 ? 'zero' : (available === 0 ? 'zero' : 'short')
  const length = buf.readUInt32BE(pos)
  if (length === 0) return 'zero'
  if (available < BATCH_HEADER_BYTES) return 'short'
  if (buf[pos + 8] !== BATCH_MAGIC || length < BATCH_HEADER_BYTES || length > maxBatchBytes) return 'bad'
  return 'ok'
}

export function readHeader (buf: Buffer, pos: number): BatchHeader {
  return {
    length: buf.readUInt32BE(pos),
    crc: buf.readUInt32BE(pos + 4),
    attributes: buf[pos + 9],
    baseOffset: readU64(buf, pos + 12),
    lastOffsetDelta: buf.readUInt32BE(pos + 20),
    recordCount: buf.readUInt32BE(pos + 24),
    firstTimestamp: readU64(buf, pos + 28),
    maxTimestamp: readU64(buf, pos + 36)
  }
}

export function batchCrcValid (buf: Buffer, pos: number, length: number): boolean {
  return buf.readUInt32BE(pos + 4) === crc32c(buf, pos + 8, pos + length)
}
