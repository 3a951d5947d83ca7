/**
 * Offline checks of a whole log: verify (read-only: every batch's checksum, every record's
 * structure, every seal) and salvage (keep the valid prefix of a damaged partition, move what is
 * cut off into a quarantine directory; nothing is ever deleted).
 */
import path from 'node:path'
import { fromIoError } from './errors.js'
import { requireLogDir } from './io/log-dir.js'
import { nodeFileIO, type FileIO } from './io/file-io.js'
import { readFully, writeFully } from './io/full-io.js'
import { SEAL_BYTES, SEGMENT_HEADER_BYTES, parseSegmentFileName } from './format/segment-file.js'
import { BATCH_READ_LIMIT } from './format/batch.js'
import { allZero, matchesRecord, scanSegment } from './log/scan.js'
import { readSegmentHeader, recordedEndBefore } from './log/segment.js'
import { HeadFile, readHead } from './log/head-file.js'
import { HEAD_FILE } from './log/recovery.js'
import { DirLock } from './lock/index.js'
import { META_DIR } from './meta.js'

export interface VerifyProblem {
  partition: number | 'meta'
  segment: string
  position: number
  /** First offset that cannot be read (the damaged batch's offset, as far as it is known). */
  offset: number
  /** Where the damaged segment's offsets end (exclusive): the next segment's base, or the log's end; null if unknown. */
  endOffset: number | null
  /** Later segments of the same partition (salvage moves them to the quarantine too). */
  laterSegments: number
  reason: string
}

export interface VerifyReport {
  ok: boolean
  partitions: number
  segments: number
  /** Bytes of the segment files scanned, preallocated space included. */
  bytes: number
  /** Bytes up to each segment's data end: preallocated space left out, as `inspect` counts. */
  dataBytes: number
  /** Every record scanned: `partitionRecords + metaRecords`. */
  records: number
  /** Records of the partitions: what the log holds (as `inspect` counts them, gaps left out). */
  partitionRecords: number
  /** Records of the meta log: the log's creation options and group cursor commits. */
  metaRecords: number
  problems: VerifyProblem[]
}

export interface VerifyOptions {
  io?: FileIO
  onProgress?: (done: number, total: number) => void
  /** Largest batch to accept while scanning. Default 2 GiB (any batch this version could write). */
  maxBatchBytes?: number
}

interface SegmentFile { partition: number | 'meta', dir: string, name: string, base: number, size: number }

/**
 * Opens a listed segment; null if it is gone. A writer deletes its oldest segments while verify
 * runs (trimBefore, retention, the meta log's compaction at each new segment): one deleted after
 * the listing is no longer part of the log, neither damage nor a reason to fail.
 */
function openListed (io: FileIO, file: string): number | null {
  try {
    return io.open(file, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

function listLog (io: FileIO, dir: string): { partitions: number, files: SegmentFile[] } {
  const files: SegmentFile[] = []
  let partitions = 0
  const entries = requireLogDir(io, dir)
  const dirs: Array<[number | 'meta', string]> = [['meta', path.join(dir, META_DIR)]]
  for (const e of entries) {
    const m = /^partition-(\d+)$/.exec(e)
    if (m !== null) { dirs.push([Number(m[1]), path.join(dir, e)]); partitions++ }
  }
  for (const [partition, pdir] of dirs) {
    for (const name of io.readdir(pdir).sort()) {
      const base = parseSegmentFileName(name)
      if (base === null) continue
      const fd = openListed(io, path.join(pdir, name))
      if (fd === null) continue
      try { files.push({ partition, dir: pdir, name, base, size: io.size(fd) }) } finally { io.close(fd) }
    }
  }
  return { partitions, files }
}

/** `next`: the partition's following segment file, whose header may record where `f`'s data ends. */
function checkFile (io: FileIO, f: SegmentFile, next: SegmentFile | undefined, maxBatchBytes: number): { problem: VerifyProblem | null, records: number, end: number, nextOffset: number } | null {
  const last = next === undefined
  const fd = openListed(io, path.join(f.dir, f.name))
  if (fd === null) return null
  try {
    if (readSegmentHeader(io, fd, f.base) === null) {
      return { problem: { partition: f.partition, segment: f.name, position: 0, offset: f.base, endOffset: null, laterSegments: 0, reason: 'segment header is missing or damaged' }, records: 0, end: 0, nextOffset: f.base }
    }
    const r = scanSegment(io, fd, f.size, { base: f.base, maxBatchBytes, deep: true })
    // An older segment without its seal, or with a seal torn by a power cut (nothing but zeros
    // after it), is what a crash during rotation leaves: open seals it. Not damage, and nothing
    // that repair should cut (everything newer is acknowledged data).
    // Where the next segment recorded this one's end, the seal's place is known; in files from
    // before that record, it is guessed from the shape of what follows the last valid batch.
    const recorded = last ? null : recordedEndBefore(io, path.join(next.dir, next.name), next.base)
    const tornSeal = !last && r.stop === 'bad' && (recorded !== null ? r.end === recorded.dataEnd : r.end + SEAL_BYTES >= f.size || allZero(io, fd, r.end + SEAL_BYTES, f.size))
    let reason: string | null = null
    if (r.stop === 'bad' && !tornSeal) reason = r.reason ?? 'invalid data'
    else if (r.stop === 'seal' && r.end + SEAL_BYTES !== f.size) reason = 'data follows the seal'
    else if (recorded !== null && !matchesRecord(r, recorded)) {
      reason = r.end < recorded.dataEnd ? `data lost: the next segment records this one's data ending at byte ${recorded.dataEnd}` : 'data differs from what the next segment records of it'
    }
    const records = r.nextOffset - f.base
    return { problem: reason === null ? null : { partition: f.partition, segment: f.name, position: r.end, offset: r.nextOffset, endOffset: null, laterSegments: 0, reason }, records, end: r.end, nextOffset: r.nextOffset }
  } finally {
    io.close(fd)
  }
}

/** Scans every segment of every partition and the meta log. Never writes. */
export function verifyLog (dir: string, o: VerifyOptions = {}): VerifyReport {
  const io = o.io ?? nodeFileIO
  const { partitions, files } = listLog(io, dir)
  const total = files.reduce((n, f) => n + f.size, 0)
  const report: VerifyReport = { ok: true, partitions, segments: files.length, bytes: total, dataBytes: 0, records: 0, partitionRecords: 0, metaRecords: 0, problems: [] }
  let done = 0
  o.onProgress?.(0, total)
  files.forEach((f, i) => {
    const last = i === files.length - 1 || files[i + 1].partition !== f.partition
    const c = checkFile(io, f, last ? undefined : files[i + 1], o.maxBatchBytes ?? BATCH_READ_LIMIT)
    done += f.size
    if (c === null) {
      // Deleted by the writer since the listing: the report counts what was checked.
      report.segments--
      report.bytes -= f.size
      o.onProgress?.(done, total)
      return
    }
    report.records += Math.max(0, c.records)
    if (f.partition === 'meta') report.metaRecords += Math.max(0, c.records)
    else report.partitionRecords += Math.max(0, c.records)
    report.dataBytes += c.end
    if (c.problem !== null) {
      const same = files.filter((g) => g.partition === f.partition)
      const k = same.indexOf(f)
      c.problem.laterSegments = same.length - k - 1
      c.problem.endOffset = last ? readMarkEnd(io, f.dir) : files[i + 1].base
      report.problems.push(c.problem)
    }
    o.onProgress?.(done, total)
  })
  report.ok = report.problems.length === 0
  return report
}

export interface SalvageAction {
  partition: number | 'meta'
  segment: string
  position: number
  /** First offset that is no longer in the log. */
  offset: number
  reason: string
  quarantined: string[]
  bytes: number
  /** Groups whose cursor was past the cut and was moved back to it. */
  groupsMoved?: string[]
}

/**
 * Keeps the valid prefix of every damaged partition: the bytes from the first invalid batch on,
 * and every later segment, are copied into `<dir>/quarantine/` and only then cut from the log.
 * Takes the writer's lock. Offsets from the cut on are assigned again by later appends.
 */
export function salvageLog (dir: string, o: VerifyOptions = {}): SalvageAction[] {
  const io = o.io ?? nodeFileIO
  // Checked before the lock, which would otherwise create its file in a directory that is no log.
  listLog(io, dir)
  const lock = DirLock.acquire(io, dir)
  try {
    const { files } = listLog(io, dir)
    const actions: SalvageAction[] = []
    const byPartition = new Map<number | 'meta', SegmentFile[]>()
    for (const f of files) byPartition.set(f.partition, [...(byPartition.get(f.partition) ?? []), f])
    const stamp = new Date().toISOString().replace(/[:.]/g, '-')
    for (const [partition, segs] of byPartition) {
      for (let i = 0; i < segs.length; i++) {
        const c = checkFile(io, segs[i], segs[i + 1], o.maxBatchBytes ?? BATCH_READ_LIMIT)
        if (c === null || c.problem === null) continue
        const qdir = path.join(dir, 'quarantine', `${partition === 'meta' ? 'meta' : `partition-${partition}`}-${stamp}`)
        io.mkdir(qdir)
        const cut = Math.max(c.end, SEGMENT_HEADER_BYTES)
        const action: SalvageAction = { ...c.problem, position: cut, quarantined: [], bytes: 0 }
        for (let j = i; j < segs.length; j++) {
          const from = j === i ? cut : 0
          const target = path.join(qdir, j === i ? `${segs[j].name}.from-${from}` : segs[j].name)
          copyRange(io, path.join(segs[j].dir, segs[j].name), target, from, segs[j].size)
          action.quarantined.push(target)
          action.bytes += segs[j].size - from
        }
        io.syncDir(qdir)
        io.syncDir(path.dirname(qdir))
        // Only once the copies are durable is anything cut from the log, newest first.
        for (let j = segs.length - 1; j > i; j--) {
          for (const ext of ['.log', '.index', '.timeindex']) {
            const file = path.join(segs[j].dir, segs[j].name.replace(/\.log$/, ext))
            if (io.exists(file)) io.unlink(file)
          }
        }
        const keep = path.join(segs[i].dir, segs[i].name)
        if (c.end < SEGMENT_HEADER_BYTES) {
          io.unlink(keep)
        } else {
          const fd = io.open(keep, 'rw')
          try { io.truncate(fd, cut); io.datasync(fd) } finally { io.close(fd) }
        }
        for (const ext of ['.index', '.timeindex']) {
          const file = keep.replace(/\.log$/, ext)
          if (io.exists(file)) io.unlink(file)
        }
        // The durable mark pointed past the cut; point it at the new end. If the whole segment went
        // (its header was damaged), drop the mark: it would name a segment that no longer exists,
        // and recovery trusts the scan of what is left.
        const headPath = path.join(segs[i].dir, HEAD_FILE)
        if (c.end < SEGMENT_HEADER_BYTES) {
          if (io.exists(headPath)) io.unlink(headPath)
        } else if (io.exists(headPath)) {
          const fd = io.open(headPath, 'rw')
          try {
            const mark = { segmentBase: segs[i].base, position: cut, nextOffset: c.nextOffset }
            new HeadFile(io, fd).write(mark, mark)
            io.datasync(fd)
          } finally { io.close(fd) }
        }
        io.syncDir(segs[i].dir)
        actions.push(action)
        break
      }
    }
    return actions
  } catch (err) {
    throw fromIoError(err, `salvaging ${dir}`)
  } finally {
    lock.release()
  }
}

/** The end offset recorded in a partition's durable mark (visible slot), if readable. */
function readMarkEnd (io: FileIO, dir: string): number | null {
  try {
    const fd = io.open(path.join(dir, HEAD_FILE), 'r')
    try { return readHead(io, fd).visible?.nextOffset ?? null } finally { io.close(fd) }
  } catch {
    return null
  }
}

function copyRange (io: FileIO, from: string, to: string, start: number, end: number): void {
  const src = io.open(from, 'r')
  const dst = io.open(to, 'wx')
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024)
    for (let pos = start; pos < end;) {
      const n = readFully(io, src, buf, 0, Math.min(buf.length, end - pos), pos)
      if (n === 0) break
      writeFully(io, dst, buf, 0, n, pos - start)
      pos += n
    }
    io.datasync(dst)
  } finally {
    io.close(src)
    io.close(dst)
  }
}
