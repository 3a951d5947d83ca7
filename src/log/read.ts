/**
 * The read path: point reads (through the cache of verified index blocks), chunked forward reads
 * for iterators and streams, and timestamp lookups. Readers only ever see up to the log's visible
 * end, which the append path advances after a commit is durable.
 */
import path from 'node:path'
import { readFully } from '../io/full-io.js'
import { BATCH_HEADER_BYTES, BATCH_READ_LIMIT, batchCrcValid, checkHeader, readHeader } from '../format/batch.js'
import { RecordCursor, MalformedBatch } from '../format/decode.js'
import { SEGMENT_HEADER_BYTES } from '../format/segment-file.js'
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
      const cur = RecordCursor.inBatch(r.buf, at, h.length)
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
 * The unit verified is an index block: from the sparse index entry at or below the offset to the
 * next entry, every batch in it checksummed when first read. Its map (where each record lies) is
 * cached, so later reads into it fetch only the record's own bytes.
 */
export function readRecord (log: PartitionLog, offset: number): WalRecord {
  log.refresh()
  const range = (): WalError => outOfRange(log.o.id, offset, log.start, log.end)
  if (offset < log.start || offset >= log.end) throw range()
  const si = log.segmentFor(offset)
  if (si < 0) throw range()
  const seg = log.segments[si]
  // Past the segment's last record: a gap before the next segment (explicit offsets, or records
  // lost from an older segment), never an empty block to map.
  if (offset >= seg.nextOffset) throw range()
  const idx = seg.index(log.o.io, () => log.readFd(seg), log.o.indexInterval)
  const i = floorIndex(idx.offsets, offset - seg.base)
  const from = i < 0 ? SEGMENT_HEADER_BYTES : idx.positions[i]
  const to = i + 1 < idx.positions.length ? idx.positions[i + 1] : seg.dataEnd
  // A number, not a string: building and hashing a path string per read cost more than the rest
  // of a cached read. The block's segment and end are checked, since the open segment's last
  // block grows and uids wrap.
  const key = seg.uid * 2 ** 31 + from
  let block = log.o.batchCache.get(key)
  let loaded: Buffer | null = null
  if (block === undefined || block.seg !== seg || block.to !== to) {
    loaded = Buffer.allocUnsafe(to - from)
    block = mapBlock(log, seg, loaded, from, to)
    log.o.batchCache.set(key, block)
  }
  const j = block.offsets === null ? offset - block.first : floorIndex(block.offsets, offset)
  if (j < 0 || j >= block.starts.length || (block.offsets !== null && block.offsets[j] !== offset)) throw range()
  const start = block.starts[j]
  const end = block.ends[j]
  let bytes: Buffer
  const buf = loaded ?? block.buf
  if (buf !== null) {
    // A copy: the record's key and value are views of `bytes`, and a caller that writes into
    // them must not change what later reads of the cached block return.
    bytes = Buffer.allocUnsafe(end - start)
    buf.copy(bytes, 0, start - from, end - from)
  } else {
    bytes = Buffer.allocUnsafe(end - start)
    if (readFully(log.o.io, log.readFd(seg), bytes, 0, bytes.length, start) !== bytes.length) {
      throw corrupted('segment shorter than its data', { partition: log.o.id, segment: path.basename(seg.path), position: start })
    }
  }
  const b = floorIndex(block.batchFirst, j)
  try {
    return RecordCursor.lone(bytes, block.batchBase[b], block.batchTimestamp[b], log.o.id)
  } catch (err) {
    // The bytes changed under a verified map (the file was altered behind the log's back).
    if (err instanceof MalformedBatch) throw corrupted(err.message, { partition: log.o.id, segment: path.basename(seg.path), position: start, offset })
    throw err
  }
}

/**
 * Reads the index block [from, to) into `buf`, verifies every batch's header and checksum, and
 * maps where each record lies.
 */
function mapBlock (log: PartitionLog, seg: Segment, buf: Buffer, from: number, to: number): CachedBlock {
  const name = path.basename(seg.path)
  if (readFully(log.o.io, log.readFd(seg), buf, 0, buf.length, from) !== buf.length) {
    throw corrupted('segment shorter than its data', { partition: log.o.id, segment: name, position: from })
  }
  let records = 0
  let batches = 0
  for (let at = 0; at < buf.length;) {
    const where = { partition: log.o.id, segment: name, position: from + at }
    if (checkHeader(buf, at, buf.length - at, BATCH_READ_LIMIT) !== 'ok') throw corrupted('invalid batch header', where)
    const length = buf.readUInt32BE(at)
    if (at + length > buf.length) throw corrupted('batch runs past the end of written data', where)
    if (!batchCrcValid(buf, at, length)) throw corrupted('checksum mismatch', { ...where, offset: readHeader(buf, at).baseOffset })
    records += readHeader(buf, at).recordCount
    batches++
    at += length
  }
  const offsets = new Float64Array(records)
  const starts = new Uint32Array(records)
  const ends = new Uint32Array(records)
  const batchFirst = new Uint32Array(batches)
  const batchBase = new Float64Array(batches)
  const batchTimestamp = new Float64Array(batches)
  let dense = true
  let k = 0
  for (let at = 0, b = 0; at < buf.length; b++) {
    const h = readHeader(buf, at)
    batchFirst[b] = k
    batchBase[b] = h.baseOffset
    batchTimestamp[b] = h.firstTimestamp
    const cur = RecordCursor.inBatch(buf, at, h.length)
    try {
      while (!cur.done) {
        starts[k] = from + cur.position
        offsets[k] = cur.skip()
        ends[k] = from + cur.position
        if (offsets[k] !== offsets[0] + k) dense = false
        k++
      }
    } catch (err) {
      if (err instanceof MalformedBatch) throw corrupted(err.message, { partition: log.o.id, segment: name, position: from + at })
      throw err
    }
    at += h.length
  }
  return {
    seg,
    to,
    first: records > 0 ? offsets[0] : 0,
    offsets: dense ? null : offsets,
    starts,
    ends,
    batchFirst,
    batchBase,
    batchTimestamp,
    buf,
    // Six typed arrays and the entry: a few hundred bytes of object overhead besides the data.
    bytes: (dense ? 8 : 16) * records + 24 * batches + 640
  }
}
