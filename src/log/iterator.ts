import path from 'node:path'
import { readBatches, seekPosition } from './read.js'
import { readHeader } from '../format/batch.js'
import { RecordCursor, MalformedBatch } from '../format/decode.js'
import { SEGMENT_HEADER_BYTES } from '../format/segment-file.js'
import { corrupted, trimmed } from '../errors.js'
import type { WalRecord } from '../types.js'
import type { PartitionLog } from './partition-log.js'
import type { Segment } from './segment.js'

const CHUNK = 1024 * 1024

/**
 * Reads a partition forward in chunks of whole batches, and decodes a record only when it is
 * asked for: a stream holding a decoded chunk of thousands of records kept them all alive through
 * every young-generation collection (a replay into Kafka spent a quarter of its time collecting).
 * Records hold views into their chunk (no copy), so a chunk is never reused. It stops at the end
 * visible when a chunk is fetched, so it only ever returns durable records.
 */
export class BatchReader {
  private offset: number
  // The segment being read, kept by identity: retention shifts the list, so an index would come to
  // name a later segment while `pos` still points into this one.
  private seg: Segment | null = null
  private pos = 0
  // The chunk being decoded: its bytes, batch starts, the next batch, and the visible end then.
  private buf: Buffer | null = null
  private starts: number[] = []
  private batchAt = 0
  private cursor: RecordCursor | null = null
  private cursorAt = 0
  private chunkEnd = 0
  private chunkPos = 0
  private chunkSeg = ''
  // An error met after nextChunk had records to return: thrown by its next call.
  private failure: unknown = null

  constructor (private readonly log: PartitionLog, from: number, private readonly to: number, private readonly chunkBytes = CHUNK) {
    this.offset = from
  }

  get position (): number { return this.offset }

  /** The next record, reading a chunk when the last one is used up; null at the visible end. */
  next (): WalRecord | null {
    for (;;) {
      const rec = this.nextLoaded()
      if (rec !== null) return rec
      if (!this.load()) return null
    }
  }

  /**
   * The rest of the current chunk (reading one when it is used up), or null at the end. A record
   * that fails to decode ends the chunk there: the records before it are returned, and the next
   * call throws its error.
   */
  nextChunk (): WalRecord[] | null {
    if (this.failure !== null) throw this.failure
    let rec = this.next()
    if (rec === null) return null
    const out = [rec]
    try {
      while ((rec = this.nextLoaded()) !== null) out.push(rec)
    } catch (err) {
      this.failure = err
    }
    return out
  }

  /** The next record of the chunk already read (no I/O), or null when it is used up. */
  nextLoaded (): WalRecord | null {
    const p = this.log.partition
    for (;;) {
      let cur = this.cursor
      if (cur === null || cur.done) {
        cur = this.nextBatch()
        if (cur === null) return null
      }
      let rec: WalRecord
      try {
        rec = cur.next(p)
      } catch (err) {
        if (err instanceof MalformedBatch) throw corrupted(err.message, { partition: p, segment: this.chunkSeg, position: this.chunkPos + this.cursorAt })
        throw err
      }
      if (rec.offset < this.offset) continue
      if (rec.offset >= this.chunkEnd) { this.offset = Math.max(this.offset, this.chunkEnd); this.dropChunk(); return null }
      this.offset = rec.offset + 1
      return rec
    }
  }

  private nextBatch (): RecordCursor | null {
    const buf = this.buf
    if (buf === null) return null
    while (this.batchAt < this.starts.length) {
      const at = this.starts[this.batchAt++]
      const h = readHeader(buf, at)
      if (h.recordCount === 0 || h.baseOffset + h.lastOffsetDelta < this.offset) continue
      this.cursor = RecordCursor.inBatch(buf, at, h.length)
      this.cursorAt = at
      return this.cursor
    }
    this.dropChunk()
    return null
  }

  private dropChunk (): void {
    this.buf = null
    this.starts = []
    this.batchAt = 0
    this.cursor = null
  }

  /**
   * Lets go of the chunk read last (up to 1 MiB) and the segment: an iterator left early by
   * `break` may itself stay reachable for long, and should not keep them. Records already handed
   * out keep their own views. Reading on after close() reads from where it stopped.
   */
  close (): void {
    this.dropChunk()
    this.seg = null
  }

  /** Reads the next chunk of batches; false at the visible end. */
  private load (): boolean {
    const log = this.log
    for (;;) {
      log.refresh()
      const end = Math.min(this.to, log.end)
      if (this.offset >= end) return false
      if (this.offset < log.start) throw trimmed(log.partition, this.offset, log.start)
      const segs = log.segments
      const at = log.segmentFor(this.offset)
      let seg = this.seg
      if (seg !== segs[at]) {
        // First read, or the offset now lies in another segment: find the place in that one.
        seg = this.seg = segs[at]
        this.pos = seekPosition(log, seg, this.offset)
      }
      if (this.pos >= seg.dataEnd) {
        const next = segs[at + 1]
        if (next === undefined) return false
        this.seg = next
        this.pos = SEGMENT_HEADER_BYTES
        if (next.base > this.offset) this.offset = next.base
        continue
      }
      const r = readBatches(log, seg, this.pos, this.chunkBytes)
      this.chunkPos = this.pos
      this.chunkSeg = path.basename(seg.path)
      this.pos = r.end
      this.buf = r.buf
      this.starts = r.starts
      this.batchAt = 0
      this.cursor = null
      this.chunkEnd = end
      return true
    }
  }
}

/**
 * An async iterator over a BatchReader: `next()` resolves at once with what `step` takes from the
 * chunk read last. Ending it (done, an error, or `return()` on `break`) closes the reader.
 */
abstract class ReaderIterator<T> implements AsyncIterableIterator<T> {
  private done = false

  constructor (protected readonly reader: BatchReader) {}

  protected abstract step (): T | null

  [Symbol.asyncIterator] (): this { return this }

  next (): Promise<IteratorResult<T>> {
    try {
      const v = this.done ? null : this.step()
      if (v === null) { this.end(); return Promise.resolve({ done: true, value: undefined }) }
      return Promise.resolve({ done: false, value: v })
    } catch (err) {
      this.end()
      return Promise.reject(err)
    }
  }

  return (): Promise<IteratorResult<T>> {
    this.end()
    return Promise.resolve({ done: true, value: undefined })
  }

  private end (): void {
    this.done = true
    this.reader.close()
  }
}

/** Records, one per step. */
export class RecordIterator extends ReaderIterator<WalRecord> {
  protected step (): WalRecord | null { return this.reader.next() }
}

/** The rest of a chunk per step: the fast path for replay. */
export class ChunkIterator extends ReaderIterator<WalRecord[]> {
  protected step (): WalRecord[] | null { return this.reader.nextChunk() }
}
