import { ATTR_CHECKPOINT, BATCH_HEADER_BYTES, readU64 } from './batch.js'
import type { WalHeader, WalRecord } from '../types.js'
import { headerKey } from './header-key.js'

/** Thrown for a batch whose checksum holds but whose structure does not; callers add the location. */
export class MalformedBatch extends Error {}

const NO_HEADERS: readonly WalHeader[] = Object.freeze([])

/**
 * Walks the records of one batch whose checksum was already verified. The returned key, value
 * and header buffers are views into `buf`: callers must hand out a fresh buffer per read, never
 * reuse it, which is why readers allocate their chunks instead of pooling them.
 */
export class RecordCursor {
  private constructor (
    private readonly buf: Buffer,
    private pos: number,
    private readonly end: number,
    private remaining: number,
    private readonly base: number,
    private readonly firstTimestamp: number
  ) {}

  /** The records of the batch at `batchPos`. */
  static inBatch (buf: Buffer, batchPos: number, length: number): RecordCursor {
    return new RecordCursor(buf, batchPos + BATCH_HEADER_BYTES, batchPos + length, buf.readUInt32BE(batchPos + 24), readU64(buf, batchPos + 12), readU64(buf, batchPos + 28))
  }

  /**
   * Decodes a record read on its own: `buf` holds exactly its bytes; the offset and timestamp
   * bases are its batch's, noted when the batch's checksum was verified.
   */
  static lone (buf: Buffer, base: number, firstTimestamp: number, partition: number): WalRecord {
    return new RecordCursor(buf, 0, buf.length, 1, base, firstTimestamp).next(partition)
  }

  get done (): boolean { return this.remaining === 0 }
  /** Position of the next record in the buffer. */
  get position (): number { return this.pos }

  private varint (): number {
    const buf = this.buf
    let result = 0
    let mul = 1
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.end) throw new MalformedBatch('varint runs past the batch')
      const b = buf[this.pos++]
      result += (b & 0x7f) * mul
      if (b < 0x80) return result % 2 === 0 ? result / 2 : -(result + 1) / 2
      mul *= 128
    }
    throw new MalformedBatch('varint too long')
  }

  private bytes (len: number): Buffer {
    if (len < 0 || this.pos + len > this.end) throw new MalformedBatch('field runs past the batch')
    const b = this.buf.subarray(this.pos, this.pos + len)
    this.pos += len
    return b
  }

  /** Offset of the next record without decoding it (for skipping to a target offset). */
  skip (): number {
    const len = this.varint()
    const start = this.pos
    if (len < 0 || start + len > this.end) throw new MalformedBatch('record runs past the batch')
    this.pos++
    this.varint()
    const offset = this.base + this.varint()
    this.pos = start + len
    this.remaining--
    return offset
  }

  /** Offset of the next record, leaving the cursor where it is. */
  peekOffset (): number {
    const save = this.pos
    const rem = this.remaining
    const offset = this.skip()
    this.pos = save
    this.remaining = rem
    return offset
  }

  next (partition: number): WalRecord {
    const len = this.varint()
    const start = this.pos
    if (len < 0 || start + len > this.end) throw new MalformedBatch('record runs past the batch')
    this.pos++ // record attributes
    const timestamp = this.firstTimestamp + this.varint()
    const offset = this.base + this.varint()
    const keyLen = this.varint()
    const key = keyLen === -1 ? null : this.bytes(keyLen)
    const valueLen = this.varint()
    const value = valueLen === -1 ? null : this.bytes(valueLen)
    const headerCount = this.varint()
    let headers: WalHeader[] = NO_HEADERS as WalHeader[]
    if (headerCount !== 0) {
      if (headerCount < 0) throw new MalformedBatch('negative header count')
      headers = []
      for (let i = 0; i < headerCount; i++) {
        const klen = this.varint()
        if (klen < 0 || this.pos + klen > this.end) throw new MalformedBatch('field runs past the batch')
        const hkey = headerKey(this.buf, this.pos, klen)
        this.pos += klen
        const vlen = this.varint()
        headers.push({ key: hkey, value: vlen === -1 ? null : this.bytes(vlen) })
      }
    }
    if (this.pos !== start + len) throw new MalformedBatch('record length does not match its fields')
    this.remaining--
    return { partition, offset, timestamp, key, value, headers }
  }

  /** After the last record: the checkpoint section, if the batch has one. */
  checkpoints (attributes: number): Map<string, Buffer> | null {
    if ((attributes & ATTR_CHECKPOINT) === 0) return null
    while (this.remaining > 0) this.skip()
    const out = new Map<string, Buffer>()
    const count = this.u32()
    for (let i = 0; i < count; i++) {
      const name = this.bytes(this.u16()).toString()
      const vlen = this.u32()
      out.set(name, Buffer.from(this.bytes(vlen)))
    }
    return out
  }

  private u16 (): number {
    if (this.pos + 2 > this.end) throw new MalformedBatch('checkpoint section runs past the batch')
    const v = this.buf.readUInt16BE(this.pos); this.pos += 2; return v
  }

  private u32 (): number {
    if (this.pos + 4 > this.end) throw new MalformedBatch('checkpoint section runs past the batch')
    const v = this.buf.readUInt32BE(this.pos); this.pos += 4; return v
  }
}
