/**
 * The whole recovery path of one log, run by open():
 *  1. delete temporary files (a rotation that never got renamed; a zero-filled next segment,
 *     unless it can be finished instead);
 *  2. every segment but the last must be sealed; one that is not (a crash mid-rotation) is
 *     sealed now. The next segment's header records where its data ends: only its structure
 *     is walked, to match that record (checksums are checked by reads, as in sealed segments).
 *     Files from before that record are scanned in full and cut at their last valid batch;
 *  3. the last segment is scanned batch by batch: below the durable mark its structure only
 *     (checksums are checked by every read, as in sealed segments), above it checksums too.
 *     Invalid bytes below the mark are damage to acknowledged data: CORRUPTED, never silently
 *     cut. Above it they are a torn tail:
 *     truncated. Non-zero bytes after the end (reordered sector writes) are truncated too, so that
 *     nothing stale can ever follow a new batch; only a power loss can leave those, so within
 *     the boot of the partition's stamp (head-file.ts) the zeros are not read;
 *  4. the checkpoints are read from the newest segment, which carries all of them.
 * A read-only open does none of the writing: it trusts only what the writer's mark covers, and
 * calls damage inside the synced part of it CORRUPTED, as the writer would (never a shorter log).
 */
import path from 'node:path'
import { mkdirDurable } from '../io/durable-mkdir.js'
import { corrupted, fromIoError, WalError } from '../errors.js'
import { readFully, writeFully } from '../io/full-io.js'
import { BATCH_READ_LIMIT, batchCrcValid, checkHeader } from '../format/batch.js'
import { SEAL_BYTES, SEGMENT_HEADER_BYTES, decodeSeal, encodeSeal, parseSegmentFileName, segmentFileName } from '../format/segment-file.js'
import { IndexBuilder } from './index-builder.js'
import { readHead, stampedInBoot, type HeadMark } from './head-file.js'
import { PREPARED_SUFFIX } from './preparer.js'
import { scanSegment, allZero, matchesRecord } from './scan.js'
import { Segment, readSegmentHeader, recordedEndBefore, writeIndexFiles } from './segment.js'
import type { LogOptions, PartitionLog } from './partition-log.js'

export const HEAD_FILE = 'durable'

export interface Recovered {
  segments: Segment[]
  checkpoints: Map<string, Buffer>
  activeFd: number
  activePreallocated: boolean
  headFd: number
  emptyNextOffset: number
  /** What the boot stamp must become once the log is clean: undefined, as it is; null, cleared. */
  stampBoot: string | null | undefined
  /** A zero-filled next segment a crashed writer left behind, to finish rather than delete. */
  prepared: string | null
}

function listDir (o: LogOptions): string[] {
  try { return o.io.readdir(o.dir) } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && o.readOnly) return []
    throw fromIoError(err, 'listing a partition', { partition: o.id })
  }
}

function segmentBases (names: string[]): number[] {
  const bases: number[] = []
  for (const name of names) {
    const base = parseSegmentFileName(name)
    if (base !== null) bases.push(base)
  }
  return bases.sort((a, b) => a - b)
}

const INDEX_FILE = /^(\d{20})\.(index|timeindex)$/

/**
 * Deletes index files whose segment is gone (left by builds that wrote a compacted meta segment's
 * index after deleting it). Never synced, like every index write: one that comes back is only
 * deleted again.
 */
function removeOrphanIndexes (o: LogOptions, names: string[], bases: number[]): void {
  const live = new Set(bases)
  for (const name of names) {
    const m = INDEX_FILE.exec(name)
    if (m === null || live.has(Number(m[1]))) continue
    try { o.io.unlink(path.join(o.dir, name)) } catch {}
  }
}

function readSealAtEnd (o: LogOptions, fd: number, size: number): ReturnType<typeof decodeSeal> | null {
  if (size < SEGMENT_HEADER_BYTES + SEAL_BYTES) return null
  const buf = Buffer.allocUnsafe(SEAL_BYTES)
  if (readFully(o.io, fd, buf, 0, SEAL_BYTES, size - SEAL_BYTES) !== SEAL_BYTES) return null
  if (checkHeader(buf, 0, SEAL_BYTES, SEAL_BYTES) !== 'ok' || buf.readUInt32BE(0) !== SEAL_BYTES || (buf[9] & 2) === 0) return null
  if (!batchCrcValid(buf, 0, SEAL_BYTES)) return null
  const seal = decodeSeal(buf, 0)
  return seal.dataEnd === size - SEAL_BYTES ? seal : null
}

/**
 * Only a writer that syncs every commit keeps the stamp: with 'interval' or 'never' a writeback
 * error can go unseen until after a crash, so nothing would clear it.
 */
function wantedStamp (o: LogOptions, bootId: string | null, sameBoot: boolean): string | null | undefined {
  const want = o.sync === 'always' ? bootId : null
  return (sameBoot ? bootId : null) === want ? undefined : want
}

/** A segment listed by a read-only process was deleted by the writer before it was opened. */
class ListingOutdated extends Error {}

/**
 * Recovers the log in `o.dir` (a writer), or loads what a read-only process may read of it. The
 * writer deletes segments while a read-only process lists and opens them (retention, and the meta
 * log's compaction at each new segment): one gone before it could be opened only means the
 * listing is out of date, and it is taken again.
 */
export function recoverLog (o: LogOptions): Recovered {
  for (let attempt = 1; ; attempt++) {
    try {
      return recoverOnce(o)
    } catch (err) {
      if (!(err instanceof ListingOutdated)) throw err
      if (attempt === 5) throw new WalError('IO_ERROR', `${o.dir}: segments kept disappearing while being read (a writer deleting faster than this process can list)`, { partition: o.id })
    }
  }
}

function recoverOnce (o: LogOptions): Recovered {
  const io = o.io
  const where = (seg: string, position?: number, extra: Record<string, unknown> = {}) => ({ partition: o.id, segment: seg, position, ...extra })
  if (!o.readOnly) mkdirDurable(io, o.dir)
  const headPath = path.join(o.dir, HEAD_FILE)
  let headFd = -1
  let synced: HeadMark | null = null
  let visible: HeadMark | null = null
  if (o.readOnly) {
    try { headFd = io.open(headPath, 'r') } catch {}
    if (headFd >= 0) ({ visible, synced } = readHead(io, headFd))
  } else {
    headFd = io.exists(headPath) ? io.open(headPath, 'rw') : io.open(headPath, 'wx')
    synced = readHead(io, headFd).synced
  }
  // The head file stays open only in a recovery that succeeds: open fails with CORRUPTED, say,
  // and the caller tries again or salvages.
  try {
    const bootId = o.readOnly ? null : (io.bootId?.() ?? null)
    const sameBoot = stampedInBoot(io, headFd, bootId)
    let prepared: string | null = null
    const names = listDir(o)
    if (!o.readOnly) {
      let removed = false
      for (const name of names) {
        if (!name.endsWith('.tmp')) continue
        // A zero-filled next segment is kept for the preparer to finish: deleting 64 MiB costs
        // milliseconds. Only the preparer ever writes one, and only zeros, but a power loss could
        // undo the rename that took it out of that role, so only within the stamp's boot.
        if (prepared === null && sameBoot && name.endsWith(PREPARED_SUFFIX)) { prepared = path.join(o.dir, name); continue }
        io.unlink(path.join(o.dir, name))
        removed = true
      }
      if (removed) io.syncDir(o.dir)
    }
    let bases = segmentBases(names)
    if (!o.readOnly) removeOrphanIndexes(o, names, bases)
    // A reader ignores a segment the writer has created but not yet published a commit in.
    if (visible !== null) bases = bases.filter((b) => b <= (visible as HeadMark).segmentBase)
    const segments: Segment[] = []
    const checkpoints = new Map<string, Buffer>()
    let activeFd = -1
    let activePreallocated = false

    for (let i = 0; i < bases.length; i++) {
      const base = bases[i]
      const last = i === bases.length - 1
      const seg = new Segment(o.dir, base, { nextOffset: base, dataEnd: SEGMENT_HEADER_BYTES, sealed: false, fileSize: 0 })
      const name = path.basename(seg.path)
      let fd: number
      try {
        fd = io.open(seg.path, o.readOnly || !last ? 'r' : 'rw')
      } catch (err) {
        if (o.readOnly && (err as NodeJS.ErrnoException).code === 'ENOENT') throw new ListingOutdated()
        throw fromIoError(err, `recovering segment ${name}`, where(name))
      }
      let keepFd = false
      try {
        const size = io.size(fd)
        seg.fileSize = size
        if (readSegmentHeader(io, fd, base) === null) {
          const markInside = synced !== null && synced.segmentBase === base && synced.position > SEGMENT_HEADER_BYTES
          if (last && !markInside && !o.readOnly) {
            // A segment whose header never became durable held nothing acknowledged.
            io.close(fd); keepFd = true
            io.unlink(seg.path)
            io.syncDir(o.dir)
            continue
          }
          throw corrupted('segment header is missing or damaged', where(name, 0))
        }
        if (i > 0) {
          const prev = segments[segments.length - 1]
          if (prev.nextOffset > base) throw corrupted(`segment starts at offset ${base}, below the end of the previous one (${prev.nextOffset})`, where(name, 0))
        }
        const seal = readSealAtEnd(o, fd, size)
        if (seal !== null && seal.nextOffset >= base) {
          seg.sealed = true
          seg.nextOffset = seal.nextOffset
          seg.dataEnd = seal.dataEnd
          seg.batchCount = seal.batchCount
          seg.chain = seal.chainCrc
          seg.minTimestamp = seal.minTimestamp
          seg.maxTimestamp = seal.maxTimestamp
          if (last) scanSegment(io, fd, seal.dataEnd, { base, maxBatchBytes: BATCH_READ_LIMIT, checkpoints })
          segments.push(seg)
          continue
        }
        // Unsealed and not the last: a crash came between starting the next segment and sealing
        // this one. The next one's header says where this one's data ends.
        const recorded = last ? null : recordedEndBefore(io, path.join(o.dir, segmentFileName(bases[i + 1])), bases[i + 1])
        if (o.readOnly) {
          // Never write: an unsealed segment is read up to the writer's mark or its valid end.
          const indexer = new IndexBuilder(base, o.indexInterval)
          const limit = Math.min(visible !== null && visible.segmentBase === base ? visible.position : size, recorded?.dataEnd ?? size, size)
          // Below the writer's synced mark, the structure only, as the writer walks it: a flipped
          // payload bit is then CORRUPTED on read in both, and this open reads no more than it must.
          const mark = last && !o.compactOnRotate && synced !== null && synced.segmentBase === base && synced.position <= limit ? synced : null
          const r = scanSegment(io, fd, limit, {
            base, maxBatchBytes: BATCH_READ_LIMIT, checkpoints: last ? checkpoints : undefined, index: indexer,
            trustedEnd: mark?.position ?? 0, trustedNextOffset: mark?.nextOffset
          })
          // Bad bytes where the writer's synced mark vouches for the data are damage, as the writer
          // itself would say: stopping there quietly would hide acknowledged records from this
          // reader while the writer serves them. Above it (sync 'interval' or 'never' and a power
          // loss) they are a tail the writer will cut. A torn seal is a crash mid-rotation.
          const tornSeal = !last && recorded === null && r.stop === 'bad' && (r.end + SEAL_BYTES >= size || allZero(io, fd, r.end + SEAL_BYTES, size))
          if (r.stop === 'bad' && r.end < Math.min(limit, acknowledgedEnd(synced, base)) && !tornSeal) {
            throw corrupted(`${r.reason ?? 'invalid data'} inside acknowledged data`, where(name, r.end, { offset: r.nextOffset }))
          }
          if (r.stop === 'end' && synced !== null && synced.segmentBase === base && r.end < Math.min(limit, synced.position)) {
            throw corrupted('zeros or the end of the file inside acknowledged data', where(name, r.end, { offset: r.nextOffset }))
          }
          if (recorded !== null && !matchesRecord(r, recorded)) {
            throw corrupted(`acknowledged data lost: the segment ends at byte ${r.end}, but the next segment records its data ending at ${recorded.dataEnd}`, where(name, r.end, { offset: r.nextOffset }))
          }
          seg.nextOffset = r.nextOffset; seg.dataEnd = r.end; seg.batchCount = r.batchCount; seg.chain = r.chain
          seg.minTimestamp = r.minTimestamp; seg.maxTimestamp = r.maxTimestamp
          seg.indexer = indexer
          segments.push(seg)
          continue
        }
        const indexer = new IndexBuilder(base, o.indexInterval)
        const markPos = acknowledgedEnd(synced, base)
        // Below the mark nothing can be torn: only the structure is walked there (reads verify
        // checksums), so open costs little more than the unsynced tail whatever the segment holds.
        // Not in a log whose batches all carry checkpoints (meta): a header bit decides which
        // batches are checked in full, and there a flipped one would silently lose values.
        const mark = last && !o.compactOnRotate && synced !== null && synced.segmentBase === base ? synced : null
        // An older segment whose end the next one records was synced whole before that one was
        // created: like a sealed one, which open checks by its seal alone, its payload is left to
        // the checksums of reads, and the walk of its structure must match the record.
        const vouched = recorded !== null && !o.compactOnRotate ? recorded : null
        const r = scanSegment(io, fd, size, {
          base, maxBatchBytes: BATCH_READ_LIMIT, checkpoints: last ? checkpoints : undefined, index: indexer,
          trustedEnd: mark?.position ?? vouched?.dataEnd ?? 0, trustedNextOffset: mark?.nextOffset ?? vouched?.nextOffset, limit: recorded?.dataEnd
        })
        // An older segment's data was synced before the next segment was started, so bad bytes in
        // it are damage, unless they are only a seal torn by the crash. Where the next segment
        // recorded this one's end, the seal starts there; in files from before that record, a torn
        // seal is guessed: nothing but zeros after one seal's length.
        const tornSeal = !last && recorded === null && r.stop === 'bad' && (r.end + SEAL_BYTES >= size || allZero(io, fd, r.end + SEAL_BYTES, size))
        // The mark's synced slot is only ever written after an fdatasync covered it, whatever the
        // sync mode (now or when the data was written), so it alone decides what was acknowledged.
        if (r.stop === 'bad' && r.end < markPos && !tornSeal) {
          throw corrupted(`${r.reason ?? 'invalid data'} inside acknowledged data`, where(name, r.end, { offset: r.nextOffset }))
        }
        // A file cut short at a batch boundary scans cleanly: only the record says data is missing.
        // The mark is not needed to call it acknowledged: every mode syncs a segment before the
        // next one (and its record) is created, so the record alone proves the data was durable.
        if (recorded !== null && !matchesRecord(r, recorded)) {
          const what = r.end < recorded.dataEnd ? `ends at byte ${r.end}, but the next segment records its data ending at ${recorded.dataEnd}` : 'differs from what the next segment records of it'
          throw corrupted(`acknowledged data lost: the segment ${what}`, where(name, r.end, { offset: r.nextOffset }))
        }
        if (r.stop === 'end' && synced !== null && synced.segmentBase === base && r.end < synced.position) {
          throw corrupted('zeros or the end of the file inside acknowledged data', where(name, r.end, { offset: r.nextOffset }))
        }
        const wfd = last ? fd : io.open(seg.path, 'rw')
        try {
          let preallocated = last && size === o.segmentBytes
          // Stale bytes past the end can only come from writes reordered by a power loss: in the
          // boot that made them, the page cache holds every write whole or as a prefix.
          if (r.end < size && (r.stop === 'bad' || ((!last || !sameBoot) && !allZero(io, wfd, r.end, size)))) {
            io.truncate(wfd, r.end)
            preallocated = false
            if (!last) io.datasync(wfd)
          }
          seg.nextOffset = r.nextOffset; seg.dataEnd = r.end; seg.batchCount = r.batchCount; seg.chain = r.chain
          seg.minTimestamp = r.minTimestamp; seg.maxTimestamp = r.maxTimestamp
          seg.indexer = indexer
          seg.fileSize = preallocated ? size : r.end
          if (!last) {
            // Crash mid-rotation: this segment was never sealed. Seal it now.
            const s = encodeSeal({ nextOffset: seg.nextOffset, minTimestamp: r.batchCount > 0 && r.minTimestamp !== Number.MAX_SAFE_INTEGER ? r.minTimestamp : 0, maxTimestamp: r.maxTimestamp === Number.MIN_SAFE_INTEGER ? 0 : r.maxTimestamp, batchCount: r.batchCount, chainCrc: r.chain, dataEnd: r.end })
            writeFully(io, wfd, s, 0, s.length, r.end)
            io.truncate(wfd, r.end + SEAL_BYTES)
            io.datasync(wfd)
            seg.sealed = true
            seg.fileSize = r.end + SEAL_BYTES
            seg.minTimestamp = s.readInt32BE(28) * 0x1_0000_0000 + s.readUInt32BE(32)
            seg.maxTimestamp = s.readInt32BE(36) * 0x1_0000_0000 + s.readUInt32BE(40)
            writeIndexFiles(io, seg)
          } else {
            // A tail above the mark (a commit whose sync never returned, or sync 'interval' or
            // 'never') is made durable before readers see it or a rotation records it.
            if ((r.end !== size && !preallocated) || r.end > markPos) io.datasync(wfd)
            // No commit was published in this segment: a writer killed between the rotation's
            // rename and its directory sync leaves a name that a power loss would take back, with
            // every commit acknowledged into it from now on.
            if (synced === null || synced.segmentBase < base) io.syncDir(o.dir)
            activeFd = wfd
            activePreallocated = preallocated
            keepFd = true
          }
        } finally {
          if (!last) io.close(wfd)
        }
        segments.push(seg)
      } catch (err) {
        if (err instanceof WalError) throw err
        throw fromIoError(err, `recovering segment ${name}`, where(name))
      } finally {
        if (!keepFd) io.close(fd)
      }
    }
    const lastSeg = segments[segments.length - 1]
    if (synced !== null && !o.readOnly && (lastSeg === undefined || synced.segmentBase > lastSeg.base)) {
      if (activeFd >= 0) io.close(activeFd)
      throw corrupted(`the segment holding acknowledged data up to offset ${synced.nextOffset} is missing`, { partition: o.id, segment: String(synced.segmentBase).padStart(20, '0') + '.log' })
    }
    return { segments, checkpoints, activeFd, activePreallocated, headFd, emptyNextOffset: 0, stampBoot: wantedStamp(o, bootId, sameBoot), prepared }
  } catch (err) {
    if (headFd >= 0) { try { io.close(headFd) } catch {} }
    throw err
  }
}

/** Where the data the synced mark vouches for ends in the segment at `base`: all of an older one. */
function acknowledgedEnd (synced: HeadMark | null, base: number): number {
  if (synced === null) return 0
  if (synced.segmentBase === base) return synced.position
  return synced.segmentBase > base ? Infinity : 0
}

/**
 * Read-only processes follow a live writer through its `durable` mark: new segments appear,
 * old ones disappear with retention, and the last one is read exactly up to the mark.
 * Returns the new visible end.
 */
export function refreshReadOnly (log: PartitionLog, o: LogOptions): number {
  const io = o.io
  const segs = log.segments
  const cur = segs[segs.length - 1]
  let visible: HeadMark | null = null
  let synced: HeadMark | null = null
  if (log.headFd < 0) {
    try { log.headFd = io.open(path.join(o.dir, HEAD_FILE), 'r') } catch {}
  }
  if (log.headFd >= 0) ({ visible, synced } = readHead(io, log.headFd))
  if (visible === null) return cur?.nextOffset ?? 0
  // An unchanged mark is not enough: the writer trims and applies retention without a commit (a
  // timer, trimBefore while idle), and a reader that missed it would keep the deleted segments
  // open and report a start whose records are gone. Only older segments are ever deleted, so
  // the first one still being there says nothing was.
  if (cur !== undefined && visible.segmentBase === cur.base && visible.position === cur.dataEnd && (segs.length === 1 || io.exists(segs[0].path))) return cur.nextOffset
  // Drop segments deleted by the writer's retention, add the new ones.
  const bases = segmentBases(listDir(o))
  const present = new Set(bases)
  while (segs.length > 0 && !present.has(segs[0].base)) { o.fdCache.drop(segs[0].path); segs.shift() }
  for (const base of bases) {
    if (base > visible.segmentBase) break
    let seg = segs.find((s) => s.base === base)
    if (seg === undefined) {
      seg = new Segment(o.dir, base, { nextOffset: base, dataEnd: SEGMENT_HEADER_BYTES, sealed: false, fileSize: 0 })
      seg.indexer = new IndexBuilder(base, o.indexInterval)
      segs.push(seg)
      segs.sort((a, b) => a.base - b.base)
    }
    if (seg.sealed) continue
    // An older segment: the writer seals it just after publishing a commit in the next one, so
    // its seal may be half written now. The next segment's header records where its data ends;
    // the scan goes one seal past that, and bad bytes there are a seal still being written.
    const older = base < visible.segmentBase
    const next = older ? bases.find((b) => b > base) : undefined
    const recorded = next === undefined ? null : recordedEndBefore(io, path.join(o.dir, segmentFileName(next)), next)
    const limit = !older ? visible.position : recorded !== null ? recorded.dataEnd : Infinity
    const scanTo = recorded !== null ? recorded.dataEnd + SEAL_BYTES : limit
    if (seg.dataEnd >= scanTo) continue
    let fd: number
    try { fd = log.readFd(seg) } catch { continue }
    const size = io.size(fd)
    // As at open: below the synced mark (or the end the next segment records) the structure only;
    // a bad payload there is the reads' to find, as it is the writer's.
    const trusted = o.compactOnRotate ? null : synced !== null && synced.segmentBase === base ? synced : recorded !== null ? { position: recorded.dataEnd, nextOffset: recorded.nextOffset } : null
    // Checkpoints (and the meta log's group cursors) come with the batches: read them too, later
    // values over earlier ones, as the writer has them.
    const r = scanSegment(io, fd, Math.min(size, scanTo), {
      base, maxBatchBytes: BATCH_READ_LIMIT, index: seg.indexer ?? undefined, checkpoints: log.checkpoints,
      resume: { end: seg.dataEnd, nextOffset: seg.nextOffset, chain: seg.chain, batchCount: seg.batchCount },
      trustedEnd: trusted !== null && trusted.position > seg.dataEnd ? trusted.position : 0, trustedNextOffset: trusted?.nextOffset
    })
    // Bad bytes or missing data where the writer vouches for it (its synced mark, or the end the
    // next segment records) are damage. An older segment without a recorded end (an older
    // format) cannot tell damage from a seal being written: it stops there, as before.
    const vouchedEnd = Math.min(limit, recorded !== null ? recorded.dataEnd : acknowledgedEnd(synced, base))
    if (r.end < vouchedEnd && (older ? recorded !== null : true) && (r.stop === 'bad' || (r.stop === 'end' && (recorded !== null || synced?.segmentBase === base)))) {
      const why = r.stop === 'bad' ? `${r.reason ?? 'invalid data'} inside acknowledged data` : 'zeros or the end of the file inside acknowledged data'
      throw corrupted(why, { partition: o.id, segment: path.basename(seg.path), position: r.end, offset: r.nextOffset })
    }
    seg.dataEnd = r.end
    seg.nextOffset = r.nextOffset
    seg.chain = r.chain
    seg.batchCount = r.batchCount
    if (r.minTimestamp < seg.minTimestamp) seg.minTimestamp = r.minTimestamp
    if (r.maxTimestamp > seg.maxTimestamp) seg.maxTimestamp = r.maxTimestamp
    if (r.stop === 'seal') { seg.sealed = true; seg.fileSize = r.end + SEAL_BYTES }
  }
  const last = segs[segs.length - 1]
  return last?.nextOffset ?? 0
}
