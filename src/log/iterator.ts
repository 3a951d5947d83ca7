import { readBatches, seekPosition } from './read.js'
import { readHeader } from '../format/batch.js'
import { RecordCursor, MalformedBatch } from '../format/decode.js'
import { SEGMENT_HEADER_BYTES } from '../format/segment-file.js'
import { corrupted, trimmed } from '../errors.js'
import type { WalRecord } from '../types.js'
import type { PartitionLog } from './partition-log.js'

const CHUNK = 1024 * 1024

/**
 * Reads a partition forward in chunks of whole batches, decoding a chunk at a time. Records hold
 * views into their chunk (no copy), so a chunk is never reused. It stops at the end visible when a
 * chunk is fetched, so it only ever returns durable records.
 */
export class BatchReader {
  private offset: number
  private segIndex = -1
  private pos = 0

  constructor (private readonly log: PartitionLog, from: number, private readonly to: number, private readonly chunkBytes = CHUNK) {
    this.offset = from
  }

  get position (): number { return this.offset }

  /** The next records (at least one), or null at the end. */
  nextChunk (): WalRecord[] | null {
    const log = this.log
    for (;;) {
      log.refresh()
      const end = Math.min(this.to, log.end)
      if (this.offset >= end) return null
      if (this.offset < log.start) throw trimmed(log.partition, this.offset, log.start)
      const segs = log.segments
      let seg = segs[this.segIndex]
      const want = log.segmentFor(this.offset)
      if (seg === undefined || segs[want] !== seg) {
        // First read, or segments came and went (retention): find the place again.
        this.segIndex = want
        seg = segs[want]
        this.pos = seekPosition(log, seg, this.offset)
      }
      if (this.pos >= seg.dataEnd) {
        if (this.segIndex + 1 >= segs.length) return null
        this.segIndex++
        this.pos = SEGMENT_HEADER_BYTES
        if (segs[this.segIndex].base > this.offset) this.offset = segs[this.segIndex].base
        continue
      }
      const r = readBatches(log, seg, this.pos, this.chunkBytes)
      this.pos = r.end
      const out: WalRecord[] = []
      const p = log.partition
      for (const at of r.starts) {
        const h = readHeader(r.buf, at)
        if (h.recordCount === 0 || h.baseOffset + h.lastOffsetDelta < this.offset) continue
        const cur = RecordCursor.inBatch(r.buf, at, h.length)
        try {
          while (!cur.done) {
            const rec = cur.next(p)
            if (rec.offset < this.offset) continue
            if (rec.offset >= end) break
            out.push(rec)
          }
        } catch (err) {
          if (err instanceof MalformedBatch) throw corrupted(err.message, { partition: p, segment: seg.path, position: at })
          throw err
        }
      }
      if (out.length > 0) {
        this.offset = out[out.length - 1].offset + 1
        return out
      }
    }
  }
}

/** AsyncIterable of records; `next()` resolves at once from the decoded chunk. */
export class RecordIterator implements AsyncIterableIterator<WalRecord> {
  private chunk: WalRecord[] = []
  private i = 0
  private done = false

  constructor (private readonly reader: BatchReader) {}

  [Symbol.asyncIterator] (): this { return this }

  next (): Promise<IteratorResult<WalRecord>> {
    try {
      if (this.i >= this.chunk.length) {
        const c = this.done ? null : this.reader.nextChunk()
        if (c === null) { this.done = true; return Promise.resolve({ done: true, value: undefined }) }
        this.chunk = c
        this.i = 0
      }
      return Promise.resolve({ done: false, value: this.chunk[this.i++] })
    } catch (err) {
      this.done = true
      return Promise.reject(err)
    }
  }

  return (): Promise<IteratorResult<WalRecord>> {
    this.done = true
    this.chunk = []
    return Promise.resolve({ done: true, value: undefined })
  }
}

export class ChunkIterator implements AsyncIterableIterator<WalRecord[]> {
  private done = false
  constructor (private readonly reader: BatchReader) {}
  [Symbol.asyncIterator] (): this { return this }
  next (): Promise<IteratorResult<WalRecord[]>> {
    try {
      const c = this.done ? null : this.reader.nextChunk()
      if (c === null) { this.done = true; return Promise.resolve({ done: true, value: undefined }) }
      return Promise.resolve({ done: false, value: c })
    } catch (err) {
      this.done = true
      return Promise.reject(err)
    }
  }

  return (): Promise<IteratorResult<WalRecord[]>> {
    this.done = true
    return Promise.resolve({ done: true, value: undefined })
  }
}
