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

/**
 * The segment's index, rebuilt by a scan if its files are missing or stale. Only a writer saves
 * a rebuilt one: a read-only process does not write into the writer's directory (it would, for
 * one, leave index files of a segment the writer has just trimmed behind it).
 */
function segmentIndex (log: PartitionLog, seg: Segment): ReturnType<Segment['index']> {
  return seg.index(log.o.io, () => log.readFd(seg), log.o.indexInterval, !log.o.readOnly)
}

/** Position of the batch to start reading from to find `offset` in `seg`. */
export function seekPosition (log: PartitionLog, seg: Segment, offset: number): number {
  const idx = segmentIndex(log, seg)
  const i = floorIndex(idx.offsets, offset - seg.base)
  return i < 0 ? SEGMENT_HEADER_BYTES : idx.positions[i]
}

/**
 * Reads whole batches from `pos` (at most about `want` bytes, at least one batch) up to the
 * segment's visible end. Returns the buffer and the batch positions inside it, every checksum
 * verified. A batch that fails its checksum inside visible data is corruption, never skipped:
 * the batches before it are returned (end is its position), and a read starting at it throws.
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
    // Whatever is wrong here, the intact batches before it are served first: the next call
    // starts at this batch and reports it. One damaged batch never hides its neighbours.
    if (check !== 'ok' && starts.length > 0) break
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
      if (starts.length > 0) break
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
  const idx = segmentIndex(log, seg)
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
  const idx = segmentIndex(log, seg)
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
    // A damaged block's map covers only the batches before the damage: never cached, so every
    // read into that block verifies it again and none takes the map for the whole block.
    if (block.damage === null) log.o.batchCache.set(key, block)
  }
  const j = block.offsets === null ? offset - block.first : floorIndex(block.offsets, offset)
  if (j < 0 || j >= block.starts.length || (block.offsets !== null && block.offsets[j] !== offset)) {
    // Past the intact batches of a damaged block: the record would lie in the damaged batch or
    // after it, which cannot be told apart from a gap. Before them, a gap like any other.
    const n = block.starts.length
    if (block.damage !== null && (n === 0 || offset > (block.offsets === null ? block.first + n - 1 : block.offsets[n - 1]))) throw block.damage
    throw range()
  }
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
 * maps where each record lies. At the first batch that fails (header, checksum, bytes missing,
 * or records that do not parse) the map stops: it covers the intact batches before it, and
 * `damage` is the CORRUPTED error naming that batch, for reads past them. Such a map is never
 * cached (readRecord), so nothing is served from a damaged batch or taken for a whole block.
 */
function mapBlock (log: PartitionLog, seg: Segment, buf: Buffer, from: number, to: number): CachedBlock {
  const name = path.basename(seg.path)
  const got = readFully(log.o.io, log.readFd(seg), buf, 0, buf.length, from)
  let damage: WalError | null = null
  let records = 0
  let batches = 0
  let at = 0
  while (at < buf.length) {
    if (at >= got) { damage = corrupted('segment shorter than its data', { partition: log.o.id, segment: name, position: from + got }); break }
    if (checkHeader(buf, at, got - at, BATCH_READ_LIMIT) !== 'ok') {
      damage = corrupted(at + BATCH_HEADER_BYTES > got && got < buf.length ? 'segment shorter than its data' : 'invalid batch header', { partition: log.o.id, segment: name, position: from + at })
      break
    }
    const length = buf.readUInt32BE(at)
    if (at + length > buf.length) { damage = corrupted('batch runs past the end of written data', { partition: log.o.id, segment: name, position: from + at }); break }
    if (at + length > got) { damage = corrupted('segment shorter than its data', { partition: log.o.id, segment: name, position: from + got }); break }
    if (!batchCrcValid(buf, at, length)) { damage = corrupted('checksum mismatch', { partition: log.o.id, segment: name, position: from + at, offset: readHeader(buf, at).baseOffset }); break }
    records += readHeader(buf, at).recordCount
    batches++
    at += length
  }
  const verifiedEnd = at
  let offsets = new Float64Array(records)
  let starts = new Uint32Array(records)
  let ends = new Uint32Array(records)
  let batchFirst = new Uint32Array(batches)
  let batchBase = new Float64Array(batches)
  let batchTimestamp = new Float64Array(batches)
  let dense = true
  let k = 0
  for (let at = 0, b = 0; at < verifiedEnd; b++) {
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
      if (!(err instanceof MalformedBatch)) throw err
      // A batch whose checksum holds but whose records do not parse: none of it is mapped.
      damage = corrupted(err.message, { partition: log.o.id, segment: name, position: from + at })
      k = batchFirst[b]
      batches = b
      records = k
      offsets = offsets.subarray(0, k)
      starts = starts.subarray(0, k)
      ends = ends.subarray(0, k)
      batchFirst = batchFirst.subarray(0, b)
      batchBase = batchBase.subarray(0, b)
      batchTimestamp = batchTimestamp.subarray(0, b)
      dense = offsets.every((o, i) => o === offsets[0] + i)
      break
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
    damage,
    // Six typed arrays and the entry: a few hundred bytes of object overhead besides the data.
    bytes: (dense ? 8 : 16) * records + 24 * batches + 640
  }
}
