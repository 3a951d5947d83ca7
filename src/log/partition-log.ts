import path from 'node:path'
import type { FileIO } from '../io/file-io.js'
import { writeFully } from '../io/full-io.js'
import { BatchEncoder, BATCH_HEADER_BYTES, MAX_OFFSET_DELTA, checkpointEntryBytes, checkpointSectionBytes } from '../format/batch.js'
import { SEAL_BYTES, SEGMENT_HEADER_BYTES, encodeSeal, encodeSegmentHeader, segmentFileName, type SegmentEnd } from '../format/segment-file.js'
import { crc32c } from '../format/crc.js'
import { commitChannel, rotateChannel } from '../channels.js'
import { WalError, atRecord, closed, fromIoError, readOnly as readOnlyError } from '../errors.js'
import type { NormalRecord } from '../input.js'
import type { SyncMode } from '../types.js'
import type { CommitScheduler, Committable } from './commit-scheduler.js'
import type { FdCache } from './fd-cache.js'
import type { BatchCache } from './batch-cache.js'
import { CommitState, type PendingBatch, type Piece, type Slots } from './commit-state.js'
import { HeadFile, type HeadMark } from './head-file.js'
import { IndexBuilder } from './index-builder.js'
import { SegmentPreparer } from './preparer.js'
import { recoverLog, refreshReadOnly } from './recovery.js'
import { Segment, writeIndexFiles } from './segment.js'

export interface LogOptions {
  io: FileIO
  dir: string
  /** Partition number, written into segment headers (0xffffffff for the meta log). */
  id: number
  segmentBytes: number
  maxRecordBytes: number
  maxBatchBytes: number
  indexInterval: number
  sync: SyncMode
  preallocate: boolean
  readOnly: boolean
  fdCache: FdCache
  scheduler: CommitScheduler
  /** Meta log: delete every older segment once a new one (which starts with a snapshot) is durable. */
  compactOnRotate: boolean
  /** Verified batches shared by point reads of every log of one WriteAhead. */
  batchCache: BatchCache
  /** Watches a directory for changes (read-only followers); returns a handle to stop. */
  watch: (dir: string, onChange: () => void) => { close: () => void }
  /** Called when a segment has been sealed: retention runs then, not only on its timer. */
  onSealed?: (log: PartitionLog) => void
}

/** Values without key or headers, all with one timestamp: encoded without a record object each. */
export interface PlainValues { values: Uint8Array[], timestamp: number }

const MERGE_LIMIT = 64 * 1024
/** Above this average commit size the next segment is not zero-filled ahead (see publish). */
const PREPARE_BELOW_COMMIT_BYTES = 256 * 1024
const crcScratch = Buffer.alloc(4)
/**
 * A failed fdatasync of bytes already written: never a full disk to undo and retry (see fence),
 * whatever its errno, ENOSPC included. Thrown inside a commit, caught by commit().
 */
class SyncFailure {
  constructor (readonly cause: unknown) {}
}
/**
 * Starting the next segment failed (creating, writing or syncing the new file, with any errno:
 * ENOSPC, EMFILE, EACCES...), after the old one was synced and before anything named it: only the
 * new file, which is removed, was touched, so the commit can be undone (see writeFailed).
 */
class NewSegmentFailure {
  constructor (readonly cause: unknown) {}
}
function chainWith (chain: number, crc: number): number {
  crcScratch.writeUInt32BE(crc, 0)
  return crc32c(crcScratch, 0, 4, chain)
}

/**
 * One ordered log: a partition, or the meta log. The whole append path lives here:
 * append() encodes into the pending batch and queues a waiter; commit() writes every pending
 * batch with one write, fdatasyncs once, publishes (index, head mark, listeners) and resolves.
 */
export class PartitionLog implements Committable {
  readonly o: LogOptions
  segments: Segment[] = []
  /** Latest durable value of every checkpoint. */
  readonly checkpoints = new Map<string, Buffer>()
  private active: Segment | null = null
  private writeFd = -1
  private writePos = 0
  private activePreallocated = false
  /** A compacting log (meta) started a new segment: the older ones go once the mark names it. */
  private compactPending = false
  private head: HeadFile | null = null
  /** The `durable` mark file: written by a writer, followed by a read-only process. */
  headFd = -1
  private readonly preparer: SegmentPreparer | null
  /** Moving average of the bytes one commit writes: decides whether preparing pays (see publish). */
  private commitBytesAvg = 0
  /**
   * Every new segment carries every checkpoint (see rotate), so a segment must hold them beside
   * one batch of maxBatchBytes, or no rotation could succeed and the log would be fenced for good
   * (the meta log, once enough group cursors exist). Per name, the largest entry it has had,
   * durable or queued: an upper bound that a failed or reordered commit cannot undercut.
   */
  private readonly carrySizes = new Map<string, number>()
  private carryBytes = 0

  /** Next offset to assign, pending appends included. */
  private nextOffset = 0
  /** One past the last record readers may see. */
  private visibleEnd = 0
  private readonly encoder = new BatchEncoder()
  private openBatchCheckpoints: Map<string, Buffer> | null = null
  private openBatchRecords = 0
  private openBatchMinTs = Number.MAX_SAFE_INTEGER
  /** The commit appends are joining; `spare` is the other one, null while it is in flight. */
  private gathering = new CommitState()
  private spare: CommitState | null = new CommitState()
  /** Rewritten in place after every commit: one object less per serial append to collect. */
  private readonly headMark: HeadMark = { segmentBase: 0, position: 0, nextOffset: 0 }
  /** writeahead:rotate messages of the commit being written, published once it is settled. */
  private rotations: object[] = []
  /** Segments this commit rotated away from, sealed when it is published (see rotate). */
  private leftBehind: Array<{ seg: Segment, fd: number }> = []
  /** Segments whose seal found the disk full: sealed again after the next commit (see sealLater). */
  private unsealed: Array<{ seg: Segment, fd: number }> = []
  syncing = false
  queued = false
  /** Acknowledged appends (sync 'interval' or 'never') that no sync has covered yet. */
  private unsynced = false
  private failure: WalError | null = null
  /**
   * The partition failed while it held acknowledged appends no sync had covered: they may be lost.
   * Their appends resolved long ago and a timer's sync has no caller, so close() reports it.
   */
  private lostAcknowledged: WalError | null = null
  /** The sync syncNow() started (the timer's, or close()'s), until it returns. */
  private syncInFlight: Promise<void> | null = null
  private closing = false
  private sealsInFlight = new Set<Promise<void>>()
  private drainWaiters: Array<() => void> = []
  /** Called after records become visible (append path) so live readers wake without polling. */
  readonly listeners = new Set<(end: number) => void>()
  private watcher: { close: () => void } | null = null
  private followError: WalError | null = null

  /**
   * Calls `fn` whenever more records become visible. In a writer that is the append path itself.
   * A read-only process has no append path: it watches the partition directory (inotify through
   * fs.watch, where the `durable` mark is rewritten after every commit) and refreshes on change.
   */
  addListener (fn: (end: number) => void): void {
    this.listeners.add(fn)
    if (this.o.readOnly && this.watcher === null) this.watcher = this.o.watch(this.o.dir, () => this.followWriter())
  }

  /**
   * On a change in the directory. Nothing here may throw (it runs from a watch event): a refresh
   * that fails wakes the waiting readers instead, whose own refresh then fails with the error.
   */
  private followWriter (): void {
    try {
      this.refresh()
    } catch {
      for (const l of [...this.listeners]) l(this.visibleEnd)
    }
  }

  removeListener (fn: (end: number) => void): void {
    this.listeners.delete(fn)
    if (this.listeners.size === 0 && this.watcher !== null) { this.watcher.close(); this.watcher = null }
  }

  private constructor (o: LogOptions) {
    this.o = o
    this.preparer = o.preallocate && !o.readOnly ? new SegmentPreparer(o.io, o.dir, o.segmentBytes, o.id) : null
  }

  static open (o: LogOptions): PartitionLog {
    const log = new PartitionLog(o)
    const r = recoverLog(o)
    log.segments = r.segments
    for (const [k, v] of r.checkpoints) log.checkpoints.set(k, v)
    log.noteCarry(r.checkpoints)
    const last = r.segments[r.segments.length - 1]
    log.nextOffset = log.visibleEnd = last === undefined ? r.emptyNextOffset : last.nextOffset
    if (!o.readOnly) {
      log.headFd = r.headFd
      log.head = new HeadFile(o.io, r.headFd)
      // Only now is the log clean: a stamp written before could vouch for a tail not yet cut.
      // Best effort, like every write of the head file: without a stamp the next open reads more.
      if (r.stampBoot !== undefined) { try { log.head.stampBoot(r.stampBoot) } catch {} }
      if (r.prepared !== null) {
        if (log.preparer !== null) log.preparer.adopt(r.prepared)
        else { try { o.io.unlink(r.prepared) } catch {} }
      }
      if (r.activeFd >= 0 && last !== undefined && !last.sealed) {
        log.active = last
        log.writeFd = r.activeFd
        log.writePos = last.dataEnd
        log.activePreallocated = r.activePreallocated
      }
    } else {
      log.headFd = r.headFd
    }
    return log
  }

  get partition (): number { return this.o.id }
  get hasPending (): boolean { return !this.gathering.isEmpty || this.encoder.inBatch }
  get start (): number { return this.segments.length === 0 ? this.visibleEnd : this.segments[0].base }
  get end (): number { return this.visibleEnd }
  /** Next offset to assign, pending appends included. */
  get pendingEnd (): number { return this.nextOffset }
  get failed (): WalError | null { return this.failure }
  get bytes (): number { return this.segments.reduce((n, s) => n + s.bytes, 0) }

  private checkWritable (): void {
    if (this.o.readOnly) throw readOnlyError()
    if (this.closing) throw closed()
    if (this.failure !== null) {
      throw new WalError('PARTITION_FAILED', `partition ${this.o.id} refuses writes after an earlier failure (${this.failure.message}); reopen the log`, { partition: this.o.id }, this.failure)
    }
  }

  /**
   * Queues records (possibly none, for a checkpoint-only commit) as one atomic unit and returns a
   * promise of the first offset, resolved once durable. Records of one call never split across
   * batches, so a torn write can never keep half of them.
   */
  append (records: NormalRecord[] | PlainValues, checkpoints: Map<string, Buffer> | null, offsets: number[] | null): Promise<number> {
    this.checkWritable()
    if (checkpoints !== null) this.checkCarry(checkpoints)
    const enc = this.encoder
    const first = offsets === null ? this.nextOffset : (offsets.length > 0 ? offsets[0] : this.nextOffset)
    const plain = !Array.isArray(records)
    const count = plain ? records.values.length : records.length
    const max = this.o.maxRecordBytes
    for (let i = 0; i < count; i++) {
      const size = plain ? records.values[i].length : (records as NormalRecord[])[i].size
      if (size > max) {
        const err = new WalError('RECORD_TOO_LARGE', `record of ${size} bytes exceeds maxRecordBytes (${max})`, { partition: this.o.id, size })
        throw count > 1 ? atRecord(err, i, 'record # of the batch') : err
      }
    }
    const ts0 = plain ? records.timestamp : (count > 0 ? (records as NormalRecord[])[0].timestamp : Date.now())
    // Separate calls share a batch only up to a modest size, so a point read never has to read and
    // checksum a huge batch that group commit happened to merge.
    if (enc.inBatch && enc.currentBatchBytes >= MERGE_LIMIT) this.closeOpenBatch()
    // A batch stores its offsets as 32-bit deltas from its base: far explicit offsets start a new one.
    if (enc.inBatch && offsets !== null && offsets.length > 0 && offsets[offsets.length - 1] - enc.currentBaseOffset > MAX_OFFSET_DELTA) this.closeOpenBatch()
    if (!enc.inBatch) enc.beginBatch(first, ts0)
    enc.save()
    this.encodeRecords(records, first, offsets)
    // The checkpoint section is written at the end of the batch: it counts toward the limit too.
    if (enc.currentBatchBytes + checkpointSectionBytes(this.openBatchCheckpoints, checkpoints) > this.o.maxBatchBytes) {
      enc.restore()
      const alone = enc.recordCount === 0 && this.openBatchCheckpoints === null
      if (alone) { enc.abandonBatch(); throw this.batchTooLarge(count) }
      this.closeOpenBatch()
      enc.beginBatch(first, ts0)
      enc.save()
      this.encodeRecords(records, first, offsets)
      if (enc.currentBatchBytes + checkpointSectionBytes(checkpoints) > this.o.maxBatchBytes) { enc.restore(); enc.abandonBatch(); throw this.batchTooLarge(count) }
    }
    if (this.gathering.firstOffset < 0) this.gathering.firstOffset = this.nextOffset
    if (plain) {
      if (count > 0 && ts0 < this.openBatchMinTs) this.openBatchMinTs = ts0
    } else {
      for (const rec of records as NormalRecord[]) if (rec.timestamp < this.openBatchMinTs) this.openBatchMinTs = rec.timestamp
    }
    this.openBatchRecords += count
    if (checkpoints !== null) {
      this.openBatchCheckpoints ??= new Map()
      for (const [k, v] of checkpoints) this.openBatchCheckpoints.set(k, v)
    }
    if (count > 0) this.nextOffset = (offsets === null ? first + count - 1 : offsets[offsets.length - 1]) + 1
    if (checkpoints !== null) this.noteCarry(checkpoints)
    const p = this.gathering.waiters.add(first)
    this.o.scheduler.mark(this)
    return p
  }

  /** A method, not a closure made per append: the append path's garbage adds to collections. */
  private encodeRecords (records: NormalRecord[] | PlainValues, first: number, offsets: number[] | null): void {
    const enc = this.encoder
    if (!Array.isArray(records)) {
      const { values, timestamp } = records
      if (offsets === null) enc.addValues(values, first, timestamp)
      else for (let i = 0; i < values.length; i++) enc.addValue(values[i], offsets[i], timestamp)
    } else {
      for (let i = 0; i < records.length; i++) enc.addRecord(records[i], offsets === null ? first + i : offsets[i])
    }
  }

  /** Refuses checkpoints that would make the carried snapshot too large for a segment (see carrySizes). */
  private checkCarry (checkpoints: Map<string, Buffer>): void {
    let bytes = this.carryBytes
    for (const [name, value] of checkpoints) bytes += Math.max(0, checkpointEntryBytes(name, value) - (this.carrySizes.get(name) ?? 0))
    const limit = this.o.segmentBytes - SEGMENT_HEADER_BYTES - SEAL_BYTES - BATCH_HEADER_BYTES - 4 - this.o.maxBatchBytes
    if (bytes <= limit) return
    const option = this.o.compactOnRotate ? 'metaSegmentBytes (the meta log carries every group cursor)' : 'segmentBytes'
    throw new WalError('BATCH_TOO_LARGE', `checkpoints of ${bytes} bytes would no longer fit in a new segment of ${this.o.segmentBytes} bytes beside a batch of ${this.o.maxBatchBytes}: reopen with a larger ${option}`, { partition: this.o.id, size: bytes })
  }

  private noteCarry (checkpoints: Map<string, Buffer>): void {
    for (const [name, value] of checkpoints) {
      const size = checkpointEntryBytes(name, value)
      const had = this.carrySizes.get(name) ?? 0
      if (size > had) { this.carrySizes.set(name, size); this.carryBytes += size - had }
    }
  }

  private batchTooLarge (count: number): WalError {
    return new WalError('BATCH_TOO_LARGE', `batch of ${count} records exceeds maxBatchBytes (${this.o.maxBatchBytes})`, { partition: this.o.id })
  }

  private closeOpenBatch (): void {
    const enc = this.encoder
    if (!enc.inBatch) return
    const base = enc.currentBaseOffset
    const records = this.openBatchRecords
    const start = enc.closeBatch(this.openBatchCheckpoints ?? undefined)
    const end = enc.length
    const b = this.gathering.batches.next()
    b.start = start
    b.end = end
    b.base = base
    b.next = records > 0 ? enc.buf.readUInt32BE(start + 20) + base + 1 : base
    b.minTs = this.openBatchMinTs
    b.maxTs = enc.batchMaxTimestamp
    b.crc = enc.buf.readUInt32BE(start + 4)
    b.checkpoints = this.openBatchCheckpoints
    b.records = records
    this.openBatchCheckpoints = null
    this.openBatchRecords = 0
    this.openBatchMinTs = Number.MAX_SAFE_INTEGER
  }

  commit (parallel: boolean): void {
    if (this.syncing || !this.hasPending) return
    if (this.failure !== null) return this.rejectAll(this.failure)
    this.closeOpenBatch()
    const c = this.gathering
    this.gathering = this.spare ?? new CommitState()
    this.spare = null
    let synced = false
    try {
      synced = this.writePieces(c.batches, c.pieces)
    } catch (err) {
      this.encoder.reset()
      if (err instanceof SyncFailure) return this.fence(err.cause, 'fdatasync failed', c)
      const newSegment = err instanceof NewSegmentFailure
      const cause = newSegment ? (err as NewSegmentFailure).cause : err
      // Pieces already in a segment this commit left behind cannot be taken back (the new one
      // records where the old one ends); pieces all in the open segment can (see writeFailed).
      if (this.leftBehind.length > 0 || (c.pieces.length > 0 && c.pieces.items[0].seg !== this.active)) return this.fence(cause, 'write failed', c)
      return this.writeFailed(cause, c, newSegment)
    }
    this.encoder.reset()
    if (synced || this.o.sync !== 'always') {
      this.unsynced = !synced
      this.publish(c, synced)
      return
    }
    if (!parallel) {
      try {
        this.o.io.datasync(this.writeFd)
      } catch (err) {
        return this.fence(err, 'fdatasync failed', c)
      }
      this.publish(c, true)
      return
    }
    this.syncing = true
    this.o.io.datasyncAsync(this.writeFd, (err) => {
      this.syncing = false
      if (err !== null) return this.fence(err, 'fdatasync failed', c)
      this.publish(c, true)
      if (this.hasPending) this.o.scheduler.mark(this)
    })
  }

  /** A commit is settled: its state becomes the spare again, and its rotations are told. */
  private recycle (c: CommitState): void {
    c.clear()
    this.spare = c
    if (this.rotations.length > 0) for (const m of this.rotations.splice(0)) rotateChannel.publish(m)
  }

  /**
   * Writes the commit's batches: as many as fit into the open segment with one write, the rest
   * into new segments. A segment left behind is synced before the next is started, so a commit
   * spanning segments is acknowledged only when all of it is durable. Returns true when the last
   * piece is already synced (it went through a rotation).
   */
  private writePieces (list: Slots<PendingBatch>, pieces: Slots<Piece>): boolean {
    const buf = this.encoder.buf
    const batches = list.items
    const n = list.length
    let i = 0
    let lastSynced = false
    // Not while the open segment holds no records yet: the new segment would get the same base
    // offset, that is the same file name (checkpoint-only commits do not advance offsets).
    const switchToPrepared = this.preparer?.ready === true && !this.activePreallocated && (this.active === null || n === 0 || batches[0].base > this.active.base)
    while (i < n) {
      let j = i
      if (this.active !== null && !(switchToPrepared && i === 0)) {
        while (j < n && this.writePos + (batches[j].end - batches[i].start) + SEAL_BYTES <= this.o.segmentBytes) j++
      }
      const start = batches[i].start
      if (j > i) {
        const len = batches[j - 1].end - start
        writeFully(this.o.io, this.writeFd, buf, start, len, this.writePos)
        this.addPiece(pieces, this.writePos - start, i, j)
        this.writePos += len
        lastSynced = false
        if (j < n && this.o.sync !== 'never') this.syncWritten(this.writeFd)
      } else {
        // Checkpoints of this commit's earlier pieces are not published yet; the new segment's
        // carried snapshot must include them, or recovery (which reads the newest segment) loses them.
        let carried = this.checkpoints
        for (let k = 0; k < i; k++) {
          const cps = batches[k].checkpoints
          if (cps === null) continue
          if (carried === this.checkpoints) carried = new Map(this.checkpoints)
          for (const [name, value] of cps) carried.set(name, value)
        }
        // Its exact size (a name updated in this commit counts once): append keeps it within
        // what leaves room for a batch of maxBatchBytes (see checkCarry).
        const room = this.o.segmentBytes - SEGMENT_HEADER_BYTES - SEAL_BYTES - BATCH_HEADER_BYTES - checkpointSectionBytes(carried)
        while (j < n && batches[j].end - start <= room) j++
        if (j === i) throw new WalError('BATCH_TOO_LARGE', `a batch of ${batches[i].end - start} bytes does not fit in a segment of ${this.o.segmentBytes} bytes`, { partition: this.o.id })
        const len = batches[j - 1].end - start
        const dataPos = this.rotate(buf, start, len, batches[i].base, carried, this.activeEnd(batches, pieces))
        this.addPiece(pieces, dataPos - start, i, j)
        this.writePos = dataPos + len
        lastSynced = this.o.sync !== 'never'
      }
      i = j
    }
    return lastSynced
  }

  /**
   * Where the open segment's data ends, this commit's pieces in it included (they are published
   * only after the commit): a new segment's header records it, so recovery can prove the old one
   * whole before its seal is written. Computed only when rotating, off the per-commit path.
   */
  private activeEnd (batches: PendingBatch[], pieces: Slots<Piece>): SegmentEnd | null {
    const seg = this.active
    if (seg === null) return null
    const end: SegmentEnd = { nextOffset: seg.nextOffset, dataEnd: this.writePos, batchCount: seg.batchCount, chainCrc: seg.chain }
    for (let p = 0; p < pieces.length; p++) {
      const piece = pieces.items[p]
      if (piece.seg !== seg) continue
      for (let k = piece.from; k < piece.to; k++) {
        const b = batches[k]
        if (b.records > 0) end.nextOffset = b.next
        end.batchCount++
        end.chainCrc = chainWith(end.chainCrc, b.crc)
      }
    }
    return end
  }

  /** fdatasync of a segment holding written data: its failure fences the partition (SyncFailure). */
  private syncWritten (fd: number): void {
    try {
      this.o.io.datasync(fd)
    } catch (err) {
      throw new SyncFailure(err)
    }
  }

  /** Records that batches [from, to) went into the open segment at file position shift + batch.start. */
  private addPiece (pieces: Slots<Piece>, shift: number, from: number, to: number): void {
    const piece = pieces.next()
    piece.seg = this.active
    piece.shift = shift
    piece.from = from
    piece.to = to
  }

  /** Makes a written (and, when synced, durable) commit visible and resolves its appends. */
  private publish (c: CommitState, synced: boolean): void {
    const batches = c.batches.items
    let seg = this.active as Segment
    for (let p = 0; p < c.pieces.length; p++) {
      const piece = c.pieces.items[p]
      seg = piece.seg as Segment
      for (let k = piece.from; k < piece.to; k++) {
        const b = batches[k]
        const at = piece.shift + b.start
        if (b.records > 0) {
          seg.indexer?.add(b.base, at, b.maxTs)
          seg.nextOffset = b.next
          if (b.minTs < seg.minTimestamp) seg.minTimestamp = b.minTs
          if (b.maxTs > seg.maxTimestamp) seg.maxTimestamp = b.maxTs
        }
        seg.chain = chainWith(seg.chain, b.crc)
        seg.batchCount++
        seg.dataEnd = at + b.end - b.start
        if (b.checkpoints !== null) for (const [k2, v] of b.checkpoints) this.checkpoints.set(k2, Buffer.from(v))
      }
    }
    if (seg.nextOffset > this.visibleEnd) this.visibleEnd = seg.nextOffset
    if (this.leftBehind.length > 0) for (const { seg: old, fd } of this.leftBehind.splice(0)) this.sealLater(old, fd)
    if (this.unsealed.length > 0) for (const { seg: old, fd } of this.unsealed.splice(0)) this.sealLater(old, fd)
    const mark = this.headMark
    mark.segmentBase = seg.base
    mark.position = seg.dataEnd
    mark.nextOffset = seg.nextOffset
    try {
      this.head?.write(mark, synced ? mark : null)
    } catch {
      // The mark only narrows what a read-only process sees; a failed update is not a lost record.
    }
    if (this.compactPending) this.compact()
    c.waiters.resolveAll()
    // Not for...of on an empty Set: it still allocates an iterator, once per commit.
    if (this.listeners.size > 0) for (const l of this.listeners) l(this.visibleEnd)
    const bytes = c.batches.last.end - batches[0].start
    if (commitChannel.hasSubscribers) {
      commitChannel.publish({ dir: path.dirname(this.o.dir), partition: this.o.id, batches: c.batches.length, bytes, synced })
    }
    this.recycle(c)
    // Keep one zero-filled segment ready ahead of the open one (a no-op while one is ready or
    // filling), unless commits are large. Zero-filling saves a fixed cost per commit (a sync
    // without a journal commit) but writes and flushes every byte of the segment twice: measured
    // here, it loses from ~300 KB a commit on (batch of 16,384 x 64 B: 0.77x of the floor with,
    // 0.93x without; batch of 1,000: 0.86x with, 0.69x without).
    this.commitBytesAvg += (bytes - this.commitBytesAvg) / 8
    if (this.commitBytesAvg < PREPARE_BELOW_COMMIT_BYTES) this.preparer?.start()
    if (!this.hasPending && !this.syncing) this.notifyDrained()
  }

  /**
   * Starts a new segment holding this commit. Order matters for crash safety: the new file is
   * written and synced under a temporary name, renamed, and the directory synced before anything
   * is acknowledged; the old segment is sealed afterwards, off the acknowledgement path (an old
   * segment left unsealed by a crash is sealed on open).
   */
  private rotate (buf: Buffer, start: number, len: number, base: number, carried: Map<string, Buffer>, prev: SegmentEnd | null): number {
    const io = this.o.io
    const lastSeg = this.segments[this.segments.length - 1]
    if (lastSeg !== undefined && base <= lastSeg.base) {
      throw new WalError('BATCH_TOO_LARGE', `segment ${path.basename(lastSeg.path)} is full of checkpoint-only commits; append records to rotate`, { partition: this.o.id })
    }
    // The old segment may hold data no sync has covered yet: with sync 'interval' or 'never', or
    // (any mode) a tail recovery kept from a commit whose sync never returned. The new segment is
    // synced below and its header records the old one's end; were the old one's tail then lost to
    // a power cut, the log would have a hole in its offsets, or an older segment short of its
    // record: open would fail. So sync the old one first, in every mode: a power loss may then
    // only shorten the last segment, and the record proves the rest. Rotations are rare.
    // A failure here fences (see SyncFailure): the tail may be gone from the page cache, and a
    // retried rotation whose sync then passed would record an end the old segment never reaches.
    if (this.active !== null && this.writeFd >= 0) this.syncWritten(this.writeFd)
    const header = encodeSegmentHeader(this.o.id, base, Date.now(), prev)
    // Every checkpoint is carried into the first batch of the new segment, so the newest segment
    // alone holds them all: recovery never reads sealed segments for them, and the meta log is
    // compacted just by dropping its older segments.
    let carry: Buffer | null = null
    let carryChain = 0
    if (carried.size > 0) {
      const enc = new BatchEncoder(256)
      enc.beginBatch(base, Date.now())
      enc.endBatch(carried)
      carry = enc.buf.subarray(0, enc.length)
      carryChain = chainWith(0, carry.readUInt32BE(4))
    }
    const dataPos = SEGMENT_HEADER_BYTES + (carry?.length ?? 0)
    const finalPath = path.join(this.o.dir, segmentFileName(base))
    const usePrepared = this.preparer?.ready === true
    const tmpPath = finalPath + '.tmp'
    let fd = -1
    let renamed = false
    // Taken from the preparer, which prepares the next one from then on: a failed rotation must
    // remove it, or a full disk would hold two whole segments of zeros until the next open.
    const preparedFile = usePrepared ? (this.preparer as SegmentPreparer).file : null
    try {
      if (usePrepared) {
        fd = (this.preparer as SegmentPreparer).take()
        // Out of the prepared name before anything but zeros goes in: recovery may keep a
        // prepared file as it finds it.
        io.rename((this.preparer as SegmentPreparer).file, tmpPath)
      } else {
        if (io.exists(tmpPath)) io.unlink(tmpPath)
        fd = io.open(tmpPath, 'wx')
      }
      writeFully(io, fd, header, 0, header.length, 0)
      if (carry !== null) writeFully(io, fd, carry, 0, carry.length, SEGMENT_HEADER_BYTES)
      writeFully(io, fd, buf, start, len, dataPos)
      // Durable before its name is, whatever the sync mode: a segment that exists must have its
      // header. (A compacting log, meta, also deletes its older segments right after.)
      io.datasync(fd)
      io.rename(tmpPath, finalPath)
      renamed = true
      io.syncDir(this.o.dir)
    } catch (err) {
      if (fd >= 0) { try { io.close(fd) } catch {} }
      try { if (io.exists(tmpPath)) io.unlink(tmpPath) } catch {}
      try { if (preparedFile !== null && io.exists(preparedFile)) io.unlink(preparedFile) } catch {}
      this.preparer?.reset()
      if (renamed) {
        // The commit is undone (DISK_FULL) and its offsets reused, so the new segment must go:
        // left behind, its records and its record of the old segment's end would be stale.
        try {
          io.unlink(finalPath)
          io.syncDir(this.o.dir)
        } catch (cleanupErr) {
          throw new WalError('IO_ERROR', `a rotation failed and its new segment ${path.basename(finalPath)} could not be removed`, { partition: this.o.id }, cleanupErr)
        }
      }
      throw new NewSegmentFailure(err)
    }
    const seg = new Segment(this.o.dir, base, { nextOffset: base, dataEnd: dataPos, sealed: false, fileSize: usePrepared ? this.o.segmentBytes : dataPos + len })
    seg.indexer = new IndexBuilder(base, this.o.indexInterval)
    if (carry !== null) { seg.batchCount = 1; seg.chain = carryChain }
    const old = this.active
    const oldFd = this.writeFd
    this.segments.push(seg)
    this.active = seg
    this.writeFd = fd
    this.activePreallocated = usePrepared
    // Sealed only once this commit is published: until then `old` does not yet know the piece of
    // this commit written into it, and a seal at its current end would overwrite that piece.
    if (old !== null) this.leftBehind.push({ seg: old, fd: oldFd })
    // Told once the commit is settled: a subscriber runs synchronously, and one that appended here,
    // mid-write, would have its record encoded into a buffer about to be reset, yet acknowledged.
    if (rotateChannel.hasSubscribers) this.rotations.push({ dir: path.dirname(this.o.dir), partition: this.o.id, segment: path.basename(finalPath), prepared: usePrepared })
    this.preparer?.reset()
    // Not here: the head mark still names an older segment, and a read-only process opening
    // between the delete and the mark's update would find nothing it may read (see publish).
    if (this.o.compactOnRotate) this.compactPending = true
    return dataPos
  }

  private sealLater (seg: Segment, fd: number): void {
    const io = this.o.io
    const done = new Promise<void>((resolve) => {
      setImmediate(() => {
        // Deleted already (a meta segment compacted away as the next one started): nothing to seal.
        if (seg.dropped) {
          try { io.close(fd) } catch {}
          this.sealsInFlight.delete(done)
          return resolve()
        }
        const finish = (err: Error | null): void => {
          if (err !== null) {
            this.fence(err, `sealing segment ${path.basename(seg.path)} failed`, null)
          } else {
            seg.sealed = true
            seg.fileSize = seg.dataEnd + SEAL_BYTES
            // Deleted while this seal was in flight: its index files written now would outlive it.
            if (!seg.dropped) writeIndexFiles(io, seg)
          }
          try { io.close(fd) } catch {}
          this.sealsInFlight.delete(done)
          resolve()
          if (err === null && !this.closing) this.o.onSealed?.(this)
        }
        try {
          const seal = encodeSeal({
            nextOffset: seg.nextOffset,
            minTimestamp: seg.minTimestamp === Number.MAX_SAFE_INTEGER ? 0 : seg.minTimestamp,
            maxTimestamp: seg.maxTimestamp === Number.MIN_SAFE_INTEGER ? 0 : seg.maxTimestamp,
            batchCount: seg.batchCount,
            chainCrc: seg.chain,
            dataEnd: seg.dataEnd
          })
          writeFully(io, fd, seal, 0, seal.length, seg.dataEnd)
          io.truncate(fd, seg.dataEnd + SEAL_BYTES)
        } catch (err) {
          // Out of space before any sync: the segment's data was synced before the next one was
          // started, and no failed sync leaves the page cache in doubt, so nothing is fenced (that
          // would make a passing full disk need a reopen, where DISK_FULL promises appends succeed
          // again once space is freed). It stays unsealed, sealed again after the next commit (or
          // by recovery, as any older segment left unsealed), over whatever part of it was written.
          if (fromIoError(err, 'sealing').code === 'DISK_FULL') {
            this.unsealed.push({ seg, fd })
            this.sealsInFlight.delete(done)
            return resolve()
          }
          return finish(err as Error)
        }
        io.datasyncAsync(fd, finish)
      })
    })
    this.sealsInFlight.add(done)
  }

  /**
   * A write that failed for lack of space wrote nothing durable and acknowledged nothing: undo it
   * and stay open, so appends succeed again once space is freed. Anything else fails closed.
   */
  private writeFailed (err: unknown, c: CommitState, newSegment: boolean): void {
    const len = c.batches.last.end - c.batches.items[0].start
    const e = fromIoError(err, newSegment ? `append to partition ${this.o.id}: the next segment could not be started, and the commit was undone` : `append to partition ${this.o.id}`, { partition: this.o.id })
    // Whatever failed here (a write, creating the next segment), the page cache may no longer be
    // the whole truth: the next open reads the whole tail.
    this.clearBootStamp()
    // A write into the open segment that failed otherwise than for space may have left pages the
    // kernel could drop later (see fence); the next segment failing to start touched only its new
    // file (EMFILE, say, passes, and fencing would hold the partition until a reopen).
    if (e.code !== 'DISK_FULL' && !newSegment) return this.fence(err, 'write failed', c)
    // A commit spanning a rotation wrote (and synced) its first piece into the open segment
    // before the rotation failed: it goes too, or it would be served after a reopen although its
    // appends were told DISK_FULL ("undone", so retried: their records would be there twice).
    const synced = c.pieces.length > 0
    if (synced) this.writePos = c.pieces.items[0].shift + c.batches.items[0].start
    // Undo whatever part of the write reached the open segment (none, if rotation failed).
    try {
      if (this.active !== null && this.activePreallocated) {
        const zeros = Buffer.alloc(Math.min(len, this.o.segmentBytes - this.writePos))
        writeFully(this.o.io, this.writeFd, zeros, 0, zeros.length, this.writePos)
      } else if (this.active !== null) {
        this.o.io.truncate(this.writeFd, this.writePos)
      }
      // What a sync made durable only a sync takes back: a power loss would otherwise bring it
      // back, whole batches above the durable mark that recovery keeps.
      if (synced) this.o.io.datasync(this.writeFd)
    } catch (cleanupErr) {
      return this.fence(cleanupErr, 'cleaning up after a failed write failed', c)
    }
    this.nextOffset = c.firstOffset
    c.waiters.rejectAll(e)
    this.recycle(c)
    this.notifyDrained()
  }

  /**
   * A failed fdatasync cannot be retried: the kernel may have dropped the dirty pages and marked
   * them clean (PostgreSQL's "fsyncgate"). The partition refuses writes until reopened, when
   * recovery reads back what really is on disk.
   */
  private fence (err: unknown, what: string, c: CommitState | null): void {
    const cause = fromIoError(err, `${what} on partition ${this.o.id}`, { partition: this.o.id })
    const e = cause.code === 'DISK_FULL' ? cause : new WalError('SYNC_FAILED', `${what} on partition ${this.o.id}: ${(err as Error)?.message ?? String(err)}`, { partition: this.o.id }, err)
    if (this.failure === null) this.failure = e
    if (this.unsynced && this.lostAcknowledged === null) {
      this.lostAcknowledged = new WalError('SYNC_FAILED', `partition ${this.o.id} failed before appends it had acknowledged were synced (sync: '${this.o.sync}'), which may be lost: ${e.message}`, { partition: this.o.id }, e)
    }
    // Pages whose writeback failed may later be dropped from the page cache, leaving a gap
    // before bytes written after them: the next open must read the whole tail again.
    this.clearBootStamp()
    if (c !== null) {
      c.waiters.rejectAll(e)
      this.recycle(c)
    }
    this.rejectAll(e)
  }

  private clearBootStamp (): void {
    try { this.head?.stampBoot(null) } catch {}
  }

  private rejectAll (e: WalError): void {
    // A failed commit's segments left behind stay unsealed (recovery seals them on open).
    for (const { fd } of this.leftBehind.splice(0)) { try { this.o.io.close(fd) } catch {} }
    this.encoder.reset()
    this.openBatchCheckpoints = null
    this.openBatchRecords = 0
    this.gathering.waiters.rejectAll(e)
    this.gathering.clear()
    // Not while a commit is syncing (a failed seal fences the partition meanwhile): close() would
    // close its descriptor under the fdatasync. Its own settling tells the waiters.
    if (!this.syncing) this.notifyDrained()
  }

  /** sync: 'interval' timer and close(): make everything written durable. */
  syncNow (): Promise<void> {
    // One at a time: a timer tick during a slow sync waits for it rather than stacking another.
    if (this.syncInFlight !== null) return this.syncInFlight
    if (!this.unsynced || this.writeFd < 0 || this.failure !== null) return Promise.resolve()
    const seg = this.active as Segment
    const mark: HeadMark = { segmentBase: seg.base, position: seg.dataEnd, nextOffset: seg.nextOffset }
    this.unsynced = false
    this.syncInFlight = new Promise((resolve) => {
      this.o.io.datasyncAsync(this.writeFd, (err) => {
        this.syncInFlight = null
        if (err !== null) {
          // Still not durable, and no later sync may be trusted to make them so (see fence).
          this.unsynced = true
          this.fence(err, 'fdatasync failed', null)
        } else {
          // The visible slot gets the latest commit, not the one this sync began at: commits
          // published meanwhile (a rotation among them) must not disappear for a follower opening now.
          try { this.head?.write(this.headMark, mark) } catch {}
        }
        resolve()
      })
    })
    return this.syncInFlight
  }

  private notifyDrained (): void {
    const ws = this.drainWaiters
    this.drainWaiters = []
    for (const w of ws) w()
  }

  /** Resolves when nothing is pending or in flight. */
  drained (): Promise<void> {
    if (!this.hasPending && !this.syncing) return Promise.resolve()
    return new Promise((resolve) => this.drainWaiters.push(resolve))
  }

  async close (): Promise<void> {
    if (this.o.readOnly) {
      this.closing = true
      if (this.watcher !== null) { this.watcher.close(); this.watcher = null }
      this.closeReadFds()
      if (this.headFd >= 0) { try { this.o.io.close(this.headFd) } catch {} ; this.headFd = -1 }
      return
    }
    await this.drained()
    this.closing = true
    // A timer's sync still running (it began before the last commit, or none came since): the
    // descriptor stays open until it returns (closed under it, the number may be reused and the
    // sync land on another file), and its failure counts (see lostAcknowledged).
    await this.syncInFlight
    if (this.o.sync !== 'always') await this.syncNow()
    await Promise.all([...this.sealsInFlight])
    // Seals that found the disk full stay for recovery to write.
    for (const { fd } of this.unsealed.splice(0)) { try { this.o.io.close(fd) } catch {} }
    await this.preparer?.stop()
    try {
      this.closeReadFds()
    } finally {
      if (this.writeFd >= 0) { try { this.o.io.close(this.writeFd) } catch {} ; this.writeFd = -1 }
      this.head?.close()
      this.head = null
    }
    // A close() that resolved would say every acknowledged append is durable.
    if (this.lostAcknowledged !== null) throw this.lostAcknowledged
  }

  private closeReadFds (): void {
    for (const s of this.segments) this.o.fdCache.drop(s.path)
  }

  // ---- trimming and retention ----

  /** Deletes whole sealed segments entirely below `offset`. Returns the new start. */
  trimBefore (offset: number): number {
    let n = 0
    while (n < this.segments.length - 1 && this.segments[n].sealed && this.segments[n + 1].base <= offset && this.segments[n].nextOffset <= offset) n++
    this.dropSegmentsBelow(n)
    return this.start
  }

  /**
   * Deletes every segment but the open one, whose carried snapshot holds every value. One that
   * cannot be deleted now goes at the next compaction; until then it only takes space.
   */
  private compact (): void {
    this.compactPending = false
    try { this.dropSegmentsBelow(this.segments.length - 1) } catch {}
  }

  /** Deletes the first `n` segments, oldest first, so a crash midway leaves a contiguous log. */
  dropSegmentsBelow (n: number): void {
    if (n <= 0) return
    const io = this.o.io
    const doomed = this.segments.slice(0, n)
    for (const seg of doomed) {
      seg.dropped = true
      this.o.fdCache.drop(seg.path)
      try { io.unlink(seg.path) } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromIoError(err, 'deleting a segment', { partition: this.o.id }) }
      // Gone with its file, whatever happens to its index files: kept in the list, it would hold
      // `start` at records no read can find (OFFSET_TRIMMED at the start itself).
      this.segments.shift()
      // Best effort, as every index write is: one left behind is an orphan the next open deletes.
      for (const f of [seg.indexPath, seg.timeIndexPath]) { try { io.unlink(f) } catch {} }
    }
    io.syncDir(this.o.dir)
  }

  /** Retention by size and age; never touches the open segment or the last one. */
  applyRetention (maxBytes: number | undefined, maxAgeMs: number | undefined, keepFrom: number, now: number): void {
    let n = 0
    let total = this.bytes
    while (n < this.segments.length - 1) {
      const seg = this.segments[n]
      if (!seg.sealed || seg.nextOffset > keepFrom) break
      const tooBig = maxBytes !== undefined && total > maxBytes
      const tooOld = maxAgeMs !== undefined && seg.maxTimestamp < now - maxAgeMs
      if (!tooBig && !tooOld) break
      total -= seg.bytes
      n++
    }
    this.dropSegmentsBelow(n)
  }

  // ---- reading ----

  refresh (): void {
    // After close, what was last seen stands (as a writer's offsets do): following the writer
    // would reopen its `durable` file, and nothing would close it again.
    if (this.o.readOnly && !this.closing) {
      // Damage found in what the writer acknowledged stays found: reading on past it, or
      // stopping short of it quietly, would each show a log the writer does not serve.
      if (this.followError !== null) throw this.followError
      const before = this.visibleEnd
      try {
        this.visibleEnd = refreshReadOnly(this, this.o)
      } catch (err) {
        if (WalError.is(err, 'CORRUPTED')) this.followError = err
        throw err
      }
      this.nextOffset = this.visibleEnd
      if (this.visibleEnd > before) for (const l of this.listeners) l(this.visibleEnd)
    }
  }

  /** Index of the segment that holds `offset`, or -1 if below the first segment. */
  segmentFor (offset: number): number {
    let lo = 0
    let hi = this.segments.length - 1
    let ans = -1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (this.segments[mid].base <= offset) { ans = mid; lo = mid + 1 } else hi = mid - 1
    }
    return ans
  }

  readFd (seg: Segment): number {
    if (seg === this.active && this.writeFd >= 0) return this.writeFd
    try {
      return this.o.fdCache.get(seg.path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new WalError('OFFSET_TRIMMED', `segment ${path.basename(seg.path)} of partition ${this.o.id} was deleted`, { partition: this.o.id, segment: path.basename(seg.path) })
      }
      throw fromIoError(err, 'opening a segment', { partition: this.o.id })
    }
  }
}
