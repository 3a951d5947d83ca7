import type { FileIO } from '../io/file-io.js'
import { readFully } from '../io/full-io.js'
import { ATTR_CHECKPOINT, ATTR_SEAL, BATCH_HEADER_BYTES, batchCrcValid, checkHeader, readHeader, type BatchHeader } from '../format/batch.js'
import { RecordCursor, MalformedBatch } from '../format/decode.js'
import { SEAL_BYTES, SEGMENT_HEADER_BYTES, chainCrc, decodeSeal, type SealInfo, type SegmentEnd } from '../format/segment-file.js'
import type { IndexBuilder } from './index-builder.js'

const CHUNK = 4 * 1024 * 1024
// After a batch this large the next header is read alone: a window would carry a payload that a
// trusted walk never looks at, or read again what the next batch's own read covers.
const HEADER_ONLY_AFTER = 64 * 1024
const HEADER_WINDOW = 4096

export interface ScanOptions {
  /** Expected base offset (from the file name). */
  base: number
  maxBatchBytes: number
  index?: IndexBuilder
  /** Keep the latest value of every checkpoint seen. */
  checkpoints?: Map<string, Buffer>
  /** Decode every record too, as verify does, not just checksums. */
  deep?: boolean
  /** Stop at this position (exclusive) even if more valid batches follow. */
  limit?: number
  /**
   * Batches that end below this position were covered by an fdatasync (the synced mark): only
   * their structure is checked here, not their checksum, and their payload is not read. Every
   * read checks the checksum of what it returns, as it does for sealed segments. Batches with
   * checkpoints, and every batch after one, are always verified: the scan hands their content on.
   */
  trustedEnd?: number
  /** The next offset after the batch ending at trustedEnd, from the same mark. */
  trustedNextOffset?: number
  /** Resume an earlier scan: its end position, next offset, chain and batch count. */
  resume?: { end: number, nextOffset: number, chain: number, batchCount: number }
}

export interface ScanResult {
  /** Position just after the last valid batch; the seal's position in a sealed segment. */
  end: number
  nextOffset: number
  batchCount: number
  chain: number
  minTimestamp: number
  maxTimestamp: number
  /** 'end': zeros or end of file; 'seal': a valid seal; 'bad': invalid bytes at `end`. */
  stop: 'end' | 'seal' | 'bad'
  reason?: string
  seal?: SealInfo
}

/**
 * Walks a segment's batches from the header on, checking each checksum and that offsets only
 * grow. It never throws for bad data: it reports where valid data ends and why, and the caller
 * decides whether that is a torn tail (truncate) or damage inside acknowledged data (CORRUPTED).
 */
export function scanSegment (io: FileIO, fd: number, fileSize: number, o: ScanOptions): ScanResult {
  const limit = Math.min(o.limit ?? fileSize, fileSize)
  const r: ScanResult = {
    end: SEGMENT_HEADER_BYTES, nextOffset: o.base, batchCount: 0, chain: 0,
    minTimestamp: Number.MAX_SAFE_INTEGER, maxTimestamp: Number.MIN_SAFE_INTEGER, stop: 'end'
  }
  // A file cut short below the mark must fail the walk, not be trusted past its end; the caller
  // then finds the data missing (so the mark's next offset belongs to no position here).
  const trustedEnd = Math.min(o.trustedEnd ?? 0, limit)
  const trustedNextOffset = trustedEnd === o.trustedEnd ? o.trustedNextOffset : undefined
  // Every walk starts with a small window (see ensure); it grows as batch sizes show.
  let buf = Buffer.allocUnsafe(Math.min(HEADER_WINDOW, Math.max(limit, 1)))
  let winStart = 0
  let winLen = 0
  let lastLength = 0
  let untrustedWindow = HEADER_WINDOW
  let checkRest = false

  // Makes [pos, pos + need) available in `buf`; returns the bytes available from pos (<= need).
  const ensure = (pos: number, need: number): number => {
    const want = Math.min(need, limit - pos)
    if (want <= 0) return 0
    if (pos >= winStart && pos + want <= winStart + winLen) return want
    let window = CHUNK
    if (lastLength > HEADER_ONLY_AFTER || (lastLength === 0 && pos < trustedEnd)) {
      // Batch sizes are not known before the first one: a trusted walk starts small.
      window = HEADER_WINDOW
    } else if (pos >= trustedEnd) {
      // Past the mark there is usually little but zeros (a preallocated tail): grow into it.
      window = untrustedWindow
      untrustedWindow = Math.min(CHUNK, untrustedWindow * 2)
    } else {
      // Below the mark: up to it and one header window past, never into the tail beyond, which
      // after a crash in this boot is known to be zeros (that read is what the boot stamp saves).
      window = Math.min(CHUNK, trustedEnd - pos + HEADER_WINDOW)
    }
    const size = Math.max(want, Math.min(window, limit - pos))
    if (buf.length < size) buf = Buffer.allocUnsafe(size)
    winStart = pos
    winLen = readFully(io, fd, buf, 0, size, pos)
    return Math.min(want, winLen)
  }

  if (o.resume !== undefined) {
    r.end = o.resume.end; r.nextOffset = o.resume.nextOffset; r.chain = o.resume.chain; r.batchCount = o.resume.batchCount
  }
  let pos = r.end
  for (;;) {
    const avail = ensure(pos, BATCH_HEADER_BYTES)
    const check = checkHeader(buf, pos - winStart, avail, o.maxBatchBytes)
    if (check === 'zero') break
    if (check !== 'ok') { r.stop = 'bad'; r.reason = check === 'short' ? 'truncated batch header' : 'not a batch header'; break }
    const h: BatchHeader = readHeader(buf, pos - winStart)
    lastLength = h.length
    // A batch without records exists only to carry checkpoints (or seal): always checked. Once a
    // segment has shown checkpoints, so is the rest of it, so that one flipped attribute bit
    // cannot hide a later checkpoint batch.
    if (h.recordCount === 0 || (h.attributes & (ATTR_CHECKPOINT | ATTR_SEAL)) !== 0) checkRest = true
    const trusted = !checkRest && pos + h.length <= trustedEnd && o.deep !== true
    if (!trusted) {
      if (ensure(pos, h.length) < h.length) { r.stop = 'bad'; r.reason = 'batch runs past the end of the file'; break }
      if (!batchCrcValid(buf, pos - winStart, h.length)) { r.stop = 'bad'; r.reason = 'checksum mismatch'; break }
    }
    const at = pos - winStart
    if ((h.attributes & ATTR_SEAL) !== 0) {
      const seal = h.length === SEAL_BYTES ? decodeSeal(buf, at) : null
      if (seal === null || seal.dataEnd !== pos || seal.batchCount !== r.batchCount || seal.chainCrc !== r.chain || seal.nextOffset !== r.nextOffset) {
        r.stop = 'bad'; r.reason = 'seal does not match the segment content'; break
      }
      r.stop = 'seal'; r.seal = seal; break
    }
    if (h.baseOffset < r.nextOffset || (h.recordCount > 0 && h.lastOffsetDelta < h.recordCount - 1) || !Number.isSafeInteger(h.baseOffset + h.lastOffsetDelta)) {
      r.stop = 'bad'; r.reason = `batch offset ${h.baseOffset} does not follow ${r.nextOffset - 1}`; break
    }
    if (!trusted && (o.checkpoints !== undefined || o.deep === true)) {
      try {
        const cur = RecordCursor.inBatch(buf, at, h.length)
        if (o.deep === true) {
          let last = -1
          while (!cur.done) {
            // Decoded whole, as a read would: a key, value or header length that a read refuses
            // must fail here too, not only the record's own length.
            const off = cur.next(0).offset
            if (off <= last) throw new MalformedBatch('record offsets do not increase')
            last = off
          }
        }
        const cps = cur.checkpoints(h.attributes)
        if (cps !== null && o.checkpoints !== undefined) for (const [k, v] of cps) o.checkpoints.set(k, v)
      } catch (err) {
        if (!(err instanceof MalformedBatch)) throw err
        r.stop = 'bad'; r.reason = `malformed batch: ${err.message}`; break
      }
    }
    // The batch that ends at the mark gives the log its next offset: the mark, checksummed
    // itself, must agree, or the header is damaged.
    // (A trusted batch always has records: see checkRest.)
    if (trusted && pos + h.length === trustedEnd && trustedNextOffset !== undefined &&
        h.baseOffset + h.lastOffsetDelta + 1 !== trustedNextOffset) {
      r.stop = 'bad'; r.reason = `batch ends at offset ${h.baseOffset + h.lastOffsetDelta}, the durable mark at ${trustedNextOffset - 1}`; break
    }
    if (h.recordCount > 0) {
      o.index?.add(h.baseOffset, pos, h.maxTimestamp)
      r.nextOffset = h.baseOffset + h.lastOffsetDelta + 1
      if (h.firstTimestamp < r.minTimestamp) r.minTimestamp = h.firstTimestamp
      if (h.maxTimestamp > r.maxTimestamp) r.maxTimestamp = h.maxTimestamp
    }
    r.chain = chainCrc(r.chain, buf, at)
    r.batchCount++
    pos += h.length
    r.end = pos
  }
  return r
}

/** True when a scan found the segment just as the next segment's header records it: end, next offset, batches, chain. */
export function matchesRecord (r: ScanResult, recorded: SegmentEnd): boolean {
  return r.end === recorded.dataEnd && r.nextOffset === recorded.nextOffset && r.batchCount === recorded.batchCount && r.chain === recorded.chainCrc
}

/** True when every byte in [from, to) is zero. */
export function allZero (io: FileIO, fd: number, from: number, to: number): boolean {
  const chunk = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(to - from, 1)))
  const zeros = Buffer.alloc(chunk.length)
  for (let pos = from; pos < to;) {
    const n = readFully(io, fd, chunk, 0, Math.min(chunk.length, to - pos), pos)
    if (n === 0) return true
    if (chunk.compare(zeros, 0, n, 0, n) !== 0) return false
    pos += n
  }
  return true
}
