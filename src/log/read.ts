/**
 * The read path: point reads (through the cache of verified index blocks), chunked forward reads
 * for iterators and streams, and timestamp lookups. Readers only ever see up to the log's visible
 * end, which the append path advances after a commit is durable.
 */
import path from 'node:path'
import { readFully } from '../io/full-io.js'
import { BATCH_HEADER_BYTES, BATCH_READ_LIMIT, batchCrcValid, checkHeader, readHeader } from '../format/batch.js'
import { RecordCursor, MalformedBatch } from '../format/decode.js'
import { SEAL_BYTES, SEGMENT_HEADER_BYTES } from '../format/segment-file.js'
import { WalError, corrupted, outOfRange } from '../errors.js'
import type { WalRecord } from '../types.js'
import type { CachedBlock } from './batch-cache.js'
import { floorIndex } from './index-builder.js'
import type { PartitionLog } from './partition-log.js'
import type { Segment } from './segment.js'

/** Position of the batch to start reading from to find `offset` in `seg`. */
export function seekPosition (log: PartitionLog, seg: Segment, offset: number): number {
  const idx = seg.index(log.o.io, () => log.readFd(seg), log.o.indexInterval)
  const i = floorIndex(idx.offsets, offset - seg.base)
  return i < 0 ? SEGMENT_HEADER_BYTES : idx.positions[i]
}

/**
 * Reads whole batches from `pos` (at most about `want` bytes, at least one batch) up to the
 * segment's visible end. Returns the buffer and the batch positions inside it, every checksum
 * verified. A batch that fails its checksum inside visible data is corruption, never skipped.
 */
export function readBatches (log: PartitionLog, seg: Segment, pos: number, want: number): { buf: Buffer, starts: number[], end: number } {
  const limit = seg.dataEnd
  const len = Math.min(Math.max(want, BATCH_HEADER_BYTES), limit - pos)
  if (len <= 0) return { buf: Buffer.alloc(0), starts: [], end: pos }
  const fd = log.readFd(seg)
  let buf = Buffer.allocUnsafe(len)
  let got = readFully(log.o.io, fd, buf, 0, len, pos)
  const starts: number[] = []
  let at = 0
  for (;;) {
    const avail = got - at
    if (avail <= 0) break
    const check = checkHeader(buf, at, avail, BATCH_READ_LIMIT)
    if (check === 'short' && starts.length > 0) break
    if (check === 'zero' || check === 'bad' || (check === 'short' && pos + got >= limit)) {
      throw corrupted(check === 'zero' ? 'unexpected zeros inside written data' : 'invalid batch header', { partition: log.o.id, segment: path.basename(seg.path), position: pos + at })
    }
    if (check === 'short' || buf.readUInt32BE(at) > avail) {
      if (starts.length > 0) break
      const need = check === 'short' ? BATCH_HEADER_BYTES : buf.readUInt32BE(at)
      if (pos + need > limit) throw corrupted('batch runs past the end of written data', { partition: log.o.id, segment: path.basename(seg.path), position: pos })
      const bigger = Buffer.allocUnsafe(need)
      got = readFully(log.o.io, fd, bigger, 0, need, pos)
      if (got < need) throw corrupted('segment shorter than its data', { partition: log.o.id, segment: path.basename(seg.path), position: pos + got })
      buf = bigger
      continue
    }
    const length = buf.readUInt32BE(at)
    if (!batchCrcValid(buf, at, length)) {
      throw corrupted('checksum mismatch', { partition: log.o.id, segment: path.basename(seg.path), position: pos + at, offset: readHeader(buf, at).baseOffset })
    }
    starts.push(at)
    at += length
  }
  // Visible data that yields no batch (the file ends before it): never report "no progress".
  if (starts.length === 0) throw corrupted('segment shorter than its data', { partition: log.o.id, segment: path.basename(seg.path), position: pos + got })
  return { buf, starts, end: pos + at }
}

/**
 * The first offset whose record has a timestamp >= `ts` (end if none): the segment by its max
 * timestamp, then the time index, then a scan of at most one index interval.
 */
export function offsetForTimestamp (log: PartitionLog, ts: number): number {
  log.refresh()
  const si = log.segments.findIndex((s) => s.nextOffset > s.base && s.maxTimestamp >= ts)
  if (si < 0) return log.end
  const seg = log.segments[si]
  const idx = seg.index(log.o.io, () => log.readFd(seg), log.o.indexInterval)
  let i = 0
  while (i < idx.times.length && idx.times[i] < ts) i++
  const fromRel = i === 0 ? 0 : idx.timeOffsets[i - 1]
  let pos = seekPosition(log, seg, seg.base + fromRel)
  while (pos < seg.dataEnd) {
    const r = readBatches(log, seg, pos, 64 * 1024)
    for (const at of r.starts) {
      const h = readHeader(r.buf, at)
      if (h.recordCount === 0 || h.maxTimestamp < ts) continue
      const cur = new RecordCursor(r.buf, at, h.length)
      while (!cur.done) {
        const rec = cur.next(log.o.id)
        if (rec.timestamp >= ts) return rec.offset
      }
    }
    if (r.end === pos) break
    pos = r.end
  }
  // Timestamps need not be monotonic; the segment's max said a later record qualifies.
  return seg.nextOffset
}

/**
 * One record by offset; OFFSET_OUT_OF_RANGE outside [start, end) or on a gap of explicit offsets.
 * The unit read and cached is an index block: from the sparse index entry at or below the offset
 * to the next entry, every batch in it checksummed once, every record position noted.
 */
export function readRecord (log: PartitionLog, offset: number): WalRecord {
  log.refresh()
  const range = (): WalError => outOfRange(log.o.id, offset, log.start, log.end)
  if (offset < log.start || offset >= log.end) throw range()
  const si = log.segmentFor(offset)
  if (si < 0) throw range()
  const seg = log.segments[si]
  const idx = seg.index(log.o.io, () => log.readFd(seg), log.o.indexInterval)
  const i = floorIndex(idx.offsets, offset - seg.base)
  const from = i < 0 ? SEGMENT_HEADER_BYTES : idx.positions[i]
  const to = i + 1 < idx.positions.length ? idx.positions[i + 1] : seg.dataEnd
  // A number, not a string: building and hashing a path string per read cost more than the rest
  // of a cached read. The block's segment and end are checked, since the open segment's last
  // block grows and uids wrap.
  const key = seg.uid * 2 ** 31 + from
  let block = log.o.batchCache.get(key)
  if (block === undefined || block.seg !== seg || block.to !== to) {
    block = loadBlock(log, seg, from, to)
    log.o.batchCache.set(key, block)
  }
  const j = floorIndex(block.offsets, offset)
  if (j < 0 || block.offsets[j] !== offset) throw range()
  const at = block.batchAt[j]
  return new RecordCursor(block.buf, at, block.buf.readUInt32BE(at)).recordAt(block.positions[j], log.o.id)
}

export function loadBlock (log: PartitionLog, seg: Segment, from: number, to: number): CachedBlock {
  const name = path.basename(seg.path)
  const buf = Buffer.allocUnsafe(to - from)
  if (readFully(log.o.io, log.readFd(seg), buf, 0, buf.length, from) !== buf.length) {
    throw corrupted('segment shorter than its data', { partition: log.o.id, segment: name, position: from })
  }
  const offsets: number[] = []
  const positions: number[] = []
  const batchAt: number[] = []
  for (let at = 0; at < buf.length;) {
    const where = { partition: log.o.id, segment: name, position: from + at }
    if (checkHeader(buf, at, buf.length - at, BATCH_READ_LIMIT) !== 'ok') throw corrupted('invalid batch header', where)
    const length = buf.readUInt32BE(at)
    if (at + length > buf.length) throw corrupted('batch runs past the end of written data', where)
    if (!batchCrcValid(buf, at, length)) throw corrupted('checksum mismatch', { ...where, offset: readHeader(buf, at).baseOffset })
    const cur = new RecordCursor(buf, at, length)
    try {
      while (!cur.done) { positions.push(cur.position); batchAt.push(at); offsets.push(cur.skip()) }
    } catch (err) {
      if (err instanceof MalformedBatch) throw corrupted(err.message, where)
      throw err
    }
    at += length
  }
  return { seg, to, buf, offsets, positions, batchAt, bytes: buf.length + 24 * offsets.length + 64 }
}
