import path from 'node:path'
import type { FileIO } from '../io/file-io.js'
import { SEGMENT_HEADER_BYTES, decodeIndexFiles, decodeSegmentHeader, emptyIndex, encodeOffsetIndex, encodeTimeIndex, segmentFileName, type SegmentEnd, type SegmentHeader, type SegmentIndex } from '../format/segment-file.js'
import { readFully } from '../io/full-io.js'
import { BATCH_READ_LIMIT } from '../format/batch.js'
import { IndexBuilder } from './index-builder.js'
import { scanSegment } from './scan.js'

let uids = 0

/** What the log knows about one segment file, in memory. */
export class Segment {
  readonly path: string
  /** Names this object in numeric cache keys (see BatchCache); wraps, so keys are checked on hit. */
  readonly uid = uids++ % 2 ** 21
  /** One past the last record's offset; equals base while empty. */
  nextOffset: number
  /** Where batch data ends: the write position while open, the seal's position once sealed. */
  dataEnd: number
  sealed: boolean
  /** Bytes on disk (preallocated space of an open segment included). */
  fileSize: number
  batchCount = 0
  chain = 0
  minTimestamp = Number.MAX_SAFE_INTEGER
  maxTimestamp = Number.MIN_SAFE_INTEGER
  /** Loaded lazily for sealed segments; always present for the open one. */
  indexer: IndexBuilder | null = null
  /** Deleted (trimmed, or compacted away) while its seal may still be in flight. */
  dropped = false

  constructor (readonly dir: string, readonly base: number, init: { nextOffset: number, dataEnd: number, sealed: boolean, fileSize: number }) {
    this.path = path.join(dir, segmentFileName(base))
    this.nextOffset = init.nextOffset
    this.dataEnd = init.dataEnd
    this.sealed = init.sealed
    this.fileSize = init.fileSize
  }

  get indexPath (): string { return this.path.slice(0, -4) + '.index' }
  get timeIndexPath (): string { return this.path.slice(0, -4) + '.timeindex' }
  get bytes (): number { return this.sealed ? this.fileSize : this.dataEnd }

  /** The index, loading it from its files or rebuilding it by a scan (saved if `save`) when they do not match. */
  index (io: FileIO, fd: () => number, interval: number, save: boolean): SegmentIndex {
    if (this.indexer !== null) return this.indexer.index
    const idx = emptyIndex()
    if (decodeIndexFiles(readWhole(io, this.indexPath), readWhole(io, this.timeIndexPath), this.dataEnd, this.nextOffset, idx)) {
      this.indexer = new IndexBuilder(this.base, interval, idx)
      return idx
    }
    const builder = new IndexBuilder(this.base, interval)
    // A walk of the batches' structure, not their checksums: reads verify what they return, and a
    // damaged payload must cost its own index block, not every entry after it. Only a damaged
    // header can stop the walk short; what it indexed then serves this process's reads, but is
    // never saved as the segment's index.
    const r = scanSegment(io, fd(), this.dataEnd, { base: this.base, maxBatchBytes: BATCH_READ_LIMIT, index: builder, trustedEnd: this.dataEnd, trustedNextOffset: this.nextOffset })
    this.indexer = builder
    if (this.sealed && save && r.stop !== 'bad' && r.end === this.dataEnd) writeIndexFiles(io, this)
    return builder.index
  }
}

/** The header of the segment file open at `fd`, or null if missing, damaged, or not for `base`. */
export function readSegmentHeader (io: FileIO, fd: number, base: number): SegmentHeader | null {
  const buf = Buffer.alloc(SEGMENT_HEADER_BYTES)
  readFully(io, fd, buf, 0, SEGMENT_HEADER_BYTES, 0)
  const h = decodeSegmentHeader(buf)
  return h !== null && h.base === base ? h : null
}

/**
 * What the segment file `file` (base `base`) recorded, when it was started, of where the segment
 * before it ends; null if nothing (a first segment, an older file, or a missing or bad header).
 */
export function recordedEndBefore (io: FileIO, file: string, base: number): SegmentEnd | null {
  let fd: number
  try { fd = io.open(file, 'r') } catch { return null }
  try {
    return readSegmentHeader(io, fd, base)?.prev ?? null
  } finally {
    io.close(fd)
  }
}

function readWhole (io: FileIO, file: string): Buffer | null {
  let fd: number
  try { fd = io.open(file, 'r') } catch { return null }
  try {
    const size = io.size(fd)
    const buf = Buffer.allocUnsafe(size)
    return readFully(io, fd, buf, 0, size, 0) === size ? buf : null
  } catch {
    return null
  } finally {
    io.close(fd)
  }
}

/**
 * Index files are never fsynced and written in place: a torn or stale one fails its checksum or
 * its dataEnd check and is rebuilt from the segment, which is the only source of truth.
 */
export function writeIndexFiles (io: FileIO, seg: Segment): void {
  if (seg.indexer === null) return
  const idx = seg.indexer.index
  for (const [file, data] of [[seg.indexPath, encodeOffsetIndex(idx, seg.dataEnd, seg.nextOffset)], [seg.timeIndexPath, encodeTimeIndex(idx, seg.dataEnd, seg.nextOffset)]] as const) {
    try {
      if (io.exists(file)) io.unlink(file)
      const fd = io.open(file, 'wx')
      try { io.write(fd, data, 0, data.length, 0) } finally { io.close(fd) }
    } catch {
      // Best effort: a missing index is rebuilt on demand.
    }
  }
}
