import { readRecord } from './log/read.js'
import fs from 'node:fs'
import path from 'node:path'
import { nodeFileIO, type FileIO } from './io/file-io.js'
import { retentionChannel } from './channels.js'
import { MAX_OFFSET_DELTA } from './format/batch.js'
import { WalError, closed, fromIoError, invalidArgument, invalidOffset, invalidOption, unknownPartition, outOfRange, readOnly as readOnlyError } from './errors.js'
import { bytesOf, normalizeRecord, normalizeRecords } from './input.js'
import { kindOf, plainObject, resolveOptions, type ResolvedOptions, type WriteAheadOptions } from './options.js'
import { DirLock, LOCK_FILE } from './lock/index.js'
import { Meta, META_DIR } from './meta.js'
import { CommitScheduler } from './log/commit-scheduler.js'
import { FdCache } from './log/fd-cache.js'
import { BatchCache } from './log/batch-cache.js'
import { readLogDir, requireLogDir } from './io/log-dir.js'
import { mkdirDurable } from './io/durable-mkdir.js'
import { PartitionLog, type LogOptions, type PlainValues } from './log/partition-log.js'
import { BatchReader, ChunkIterator, RecordIterator } from './log/iterator.js'
import { salvageLog, verifyLog, type SalvageAction, type VerifyOptions, type VerifyReport } from './verify.js'
import { Group, checkGroupName, groupNames, lowestCommitted, type GroupHost, type GroupInfo } from './groups.js'
import { WalReadable, type ReadableHost, type ReadableOptions } from './streams/readable.js'
import { WalWritable, type WritableOptions } from './streams/writable.js'
import type { AppendBatchOptions, AppendInput, IterateOptions, Offsets, WalRecord } from './types.js'

export { retentionChannel, commitChannel, rotateChannel, prepareChannel } from './channels.js'

const kLogs = Symbol('logs')
const kMeta = Symbol('meta')
const kLeases = Symbol('leases')
const kReaders = Symbol('readers')
const NO_VALUE = new Uint8Array(0)

const CONFIG = 'config'

interface StoredConfig { version: 1, partitions: number, segmentBytes: number, createdAt: number }

/**
 * Directory watching for read-only followers: inotify (fs.watch) on the real file system; an
 * injected I/O layer has no notifications, so there a short timer stands in.
 */
function watchDir (io: FileIO): (dir: string, onChange: () => void) => { close: () => void } {
  if (io !== nodeFileIO) {
    return (_dir, onChange) => {
      const t = setInterval(onChange, 20)
      return { close: () => clearInterval(t) }
    }
  }
  return (dir, onChange) => {
    try {
      const w = fs.watch(dir, { persistent: true }, () => onChange())
      w.on('error', () => {})
      return { close: () => w.close() }
    } catch {
      const t = setInterval(onChange, 100)
      return { close: () => clearInterval(t) }
    }
  }
}

function allBytes (inputs: unknown): boolean {
  if (!Array.isArray(inputs) || inputs.length === 0) return false
  for (let i = 0; i < inputs.length; i++) if (!(inputs[i] instanceof Uint8Array)) return false
  return true
}

export interface SegmentInfo {
  file: string
  /** First offset the segment may hold. */
  base: number
  /** One past its last offset. */
  end: number
  sealed: boolean
  /** Bytes of batch data (header included). */
  bytes: number
  /** Bytes on disk: an open segment may be preallocated beyond its data. */
  fileBytes: number
  minTimestamp: number | null
  maxTimestamp: number | null
}

/** Errors of iterate() surface on the first next(), as for any async source. */
function failing<T> (err: unknown): AsyncIterableIterator<T> {
  let thrown = false
  return {
    [Symbol.asyncIterator] () { return this },
    next: () => {
      if (thrown) return Promise.resolve({ done: true, value: undefined })
      thrown = true
      return Promise.reject(err)
    }
  }
}

export function partitionDir (dir: string, p: number): string {
  return path.join(dir, `partition-${p}`)
}

export class WriteAhead {
  readonly dir: string
  readonly options: ResolvedOptions
  private [kLogs]: PartitionLog[] = []
  /** append()'s one-value input, reused: the log encodes it before returning and keeps no reference. */
  private readonly single: PlainValues = { values: [NO_VALUE], timestamp: 0 }
  private [kMeta]: Meta | null = null
  private [kLeases] = new Map<string, WalReadable>()
  private [kReaders] = new Set<WalReadable>()
  private readonly groupHost: GroupHost
  private readonly readableHost: ReadableHost
  private lock: DirLock | null = null
  private scheduler = new CommitScheduler()
  private fdCache: FdCache
  private batchCache: BatchCache
  private timers: NodeJS.Timeout[] = []
  private isClosed = false
  private closing: Promise<void> | null = null

  private constructor (dir: string, options: ResolvedOptions) {
    this.dir = dir
    this.options = options
    this.fdCache = new FdCache(options.io, options.maxOpenFiles)
    this.batchCache = new BatchCache(options.readCacheBytes)
    const meta = (): Meta => { if (this[kMeta] === null) throw closed(); return this[kMeta] }
    this.groupHost = {
      get partitions () { return self.partitions },
      offsets: (p) => this.offsets(p),
      metaGet: (name) => meta().get(name),
      // Refusals are thrown, not returned: seek() moves its live reader only once the write is
      // queued, and a refused seek must leave the reader where it was.
      metaSet: (values) => {
        if (this.isClosed || this.closing !== null) throw closed()
        if (this.options.readOnly) throw readOnlyError()
        return meta().set(values)
      },
      metaNames: () => { meta().log.refresh(); return meta().log.checkpoints.keys() },
      onSeek: (group, p, offset) => this[kLeases].get(`${group}\0${p}`)?.reposition(offset)
    }
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this
    this.readableHost = {
      log: (p) => this.log(p),
      group: (name) => this.group(name),
      lease: (group, p, reader) => {
        const key = `${group}\0${p}`
        const holder = this[kLeases].get(key)
        // One being destroyed is going: its release (after its last autoCommit) then finds it replaced.
        if (holder !== undefined && !holder.destroying) throw new WalError('GROUP_BUSY', `group ${group} already has a live reader on partition ${p}; pass share: true to allow several`, { partition: p, group })
        this[kLeases].set(key, reader)
      },
      handover: (group, p) => this[kLeases].get(`${group}\0${p}`)?.handover ?? null,
      release: (group, p, reader) => {
        const key = `${group}\0${p}`
        if (this[kLeases].get(key) === reader) this[kLeases].delete(key)
      },
      track: (r) => this[kReaders].add(r),
      untrack: (r) => this[kReaders].delete(r),
      get closing () { return self.isClosed || self.closing !== null },
      readOnly: this.options.readOnly
    }
  }

  /** Full checksum scan of every segment; read-only, safe while a writer runs. */
  static async verify (dir: string, options?: VerifyOptions): Promise<VerifyReport> {
    return verifyLog(dir, options)
  }

  /** Keeps the valid prefix of damaged partitions; what is cut goes to `<dir>/quarantine/`. */
  static async salvage (dir: string, options?: VerifyOptions): Promise<SalvageAction[]> {
    const actions = salvageLog(dir, options)
    if (actions.some((a) => a.partition !== 'meta')) {
      // Group cursors past the cut would point at offsets that will be assigned again: move them back.
      // (open moves them: see clampCursors).
      const wal = await WriteAhead.open(dir, { io: options?.io })
      try {
        for (const a of actions) {
          if (a.partition === 'meta') continue
          const p = a.partition
          a.groupsMoved = wal.clamped.filter((c) => c.partition === p).map((c) => c.group)
        }
      } finally {
        await wal.close()
      }
    }
    return actions
  }

  /** Creates the log in `dir`, or recovers the one there. */
  static async open (dir: string, options?: WriteAheadOptions): Promise<WriteAhead> {
    if (typeof dir !== 'string' || dir.length === 0) throw invalidArgument('open(dir): dir must be a non-empty path')
    const o = resolveOptions(options)
    const wal = new WriteAhead(dir, o)
    try {
      wal.start()
      await wal.persistConfig()
      if (!o.readOnly) {
        await wal.clampCursors()
        // At open too, not only at the next seal or timer tick: a writer that lives shorter than
        // the timer's period and fills no segment (a job that appends a little and exits) would
        // otherwise never apply it, and the log would keep what it was told to delete.
        wal.applyRetention()
      }
    } catch (err) {
      // Closed whole before the lock goes: a partition may be finishing a prepared segment a
      // crashed writer left, which the next writer would adopt.
      await wal.close().catch(() => {})
      throw err
    }
    return wal
  }

  /** Group cursors open() moved back to their partition's end (see clampCursors). */
  private clamped: Array<{ group: string, partition: number, from: number, to: number }> = []

  /**
   * A cursor past its partition's end points at offsets that will be assigned again, so the group
   * would skip new records. With sync 'interval' or 'never' a power cut leaves one (the meta log
   * syncs every commit, the partition did not), as does a salvage cut: it goes back to the end.
   */
  private async clampCursors (): Promise<void> {
    for (const g of this.groups()) {
      for (const { partition: p, committed } of g.partitions) {
        const end = this.offsets(p).end
        if (committed === null || committed <= end) continue
        await this.group(g.name).seek(p, end)
        this.clamped.push({ group: g.name, partition: p, from: committed, to: end })
      }
    }
  }

  /** The log directory as every diagnostics channel names it: as the logs see it (path.join'd). */
  private get channelDir (): string { return path.dirname(partitionDir(this.dir, 0)) }

  private logOptions (dir: string, id: number): LogOptions {
    const o = this.options
    return {
      io: o.io,
      dir,
      id,
      segmentBytes: o.segmentBytes,
      maxRecordBytes: o.maxRecordBytes,
      maxBatchBytes: o.maxBatchBytes,
      indexInterval: o.indexIntervalBytes,
      sync: o.sync,
      preallocate: o.preallocate,
      readOnly: o.readOnly,
      fdCache: this.fdCache,
      scheduler: this.scheduler,
      batchCache: this.batchCache,
      watch: watchDir(this.options.io),
      compactOnRotate: false,
      onSealed: (log) => this.applyRetentionTo(log, Date.now())
    }
  }

  private start (): void {
    const o = this.options
    const io = o.io
    if (o.readOnly) {
      requireLogDir(io, this.dir)
    } else {
      try {
        mkdirDurable(io, this.dir)
      } catch (err) {
        throw fromIoError(err, `creating ${this.dir}`, { dir: this.dir })
      }
      const entries = readLogDir(io, this.dir).filter((n) => n !== LOCK_FILE && !n.startsWith(`${LOCK_FILE}.`)) // the lock and its temporary files
      if (entries.length > 0 && !entries.includes(META_DIR)) {
        throw new WalError('NOT_A_WAL', `${this.dir} is not empty and holds no write-ahead log`, { dir: this.dir })
      }
      this.lock = DirLock.acquire(io, this.dir)
    }
    const meta = Meta.open(this.logOptions('', 0), this.dir, o.metaSegmentBytes)
    this[kMeta] = meta
    const stored = meta.getJSON<StoredConfig>(CONFIG)
    const had = stored?.partitions ?? 0
    if (o.partitions !== undefined && o.partitions < had) {
      throw new WalError('PARTITIONS_REDUCED', `${this.dir} has ${had} partitions; reopening with ${o.partitions} would drop some`, { partitions: had })
    }
    const n = Math.max(had, o.partitions ?? (had === 0 ? 1 : had))
    if (o.readOnly && stored === undefined) throw new WalError('NOT_A_WAL', `${this.dir} holds no write-ahead log configuration`, { dir: this.dir })
    for (let p = 0; p < n; p++) this[kLogs].push(PartitionLog.open(this.logOptions(partitionDir(this.dir, p), p)))
    if (!o.readOnly && n !== had) {
      io.syncDir(this.dir)
      this.pendingConfig = { version: 1, partitions: n, segmentBytes: o.segmentBytes, createdAt: stored?.createdAt ?? Date.now() }
    }
    if (!o.readOnly) this.startTimers()
  }

  private pendingConfig: StoredConfig | null = null

  /** Persists a changed partition count before open() returns (see `open`). */
  private async persistConfig (): Promise<void> {
    if (this.pendingConfig === null) return
    const cfg = this.pendingConfig
    this.pendingConfig = null
    await (this[kMeta] as Meta).set(new Map([[CONFIG, Buffer.from(JSON.stringify(cfg))]]))
  }

  private startTimers (): void {
    const o = this.options
    if (o.sync === 'interval') {
      const t = setInterval(() => { for (const log of this[kLogs]) void log.syncNow() }, o.syncIntervalMs)
      t.unref()
      this.timers.push(t)
    }
    if (o.retention.maxBytes !== undefined || o.retention.maxAgeMs !== undefined) {
      const every = Math.max(10, Math.min(1000, Math.floor((o.retention.maxAgeMs ?? 1000) / 4)))
      const t = setInterval(() => this.retainAll(), every)
      t.unref()
      this.timers.push(t)
    }
  }

  /** Retention, as the timer applies it; exposed for operators and tests. */
  applyRetention (): void {
    // It deletes segments, as trimBefore does, and is refused as it is: once close() has begun,
    // the partitions it would delete from are being closed.
    if (this.isClosed || this.closing !== null) throw closed()
    // A read-only process does not own the files: it would delete segments under the writer,
    // which would still count them as retained (its reads of them OFFSET_TRIMMED).
    if (this.options.readOnly) throw readOnlyError()
    this.retainAll()
  }

  /** The timer's entry: close() clears it before anything closes, and it must never throw. */
  private retainAll (): void {
    const { maxBytes, maxAgeMs } = this.options.retention
    if (maxBytes === undefined && maxAgeMs === undefined) return
    if (this.isClosed) return
    const now = Date.now()
    // The group cursors are read once for every partition, not again for each.
    let keep: number[] | null
    try {
      keep = this.keepFrom()
    } catch {
      return // Retried on the next tick.
    }
    for (const log of this[kLogs]) this.applyRetentionTo(log, now, keep)
  }

  /** `keep`: where each partition must be kept from (keepFrom()); read here when not given. */
  private applyRetentionTo (log: PartitionLog, now: number, keep?: number[] | null): void {
    const { maxBytes, maxAgeMs } = this.options.retention
    // Not once close() has begun, also from a seal finishing meanwhile: it deletes nothing from a
    // log being closed (the next open applies it).
    if (this.isClosed || this.closing !== null || (maxBytes === undefined && maxAgeMs === undefined)) return
    const before = log.start
    try {
      log.applyRetention(maxBytes, maxAgeMs, (keep === undefined ? this.keepFrom() : keep)?.[log.partition] ?? Number.MAX_SAFE_INTEGER, now)
    } catch {
      return // Retried on the next tick; a failed unlink loses nothing.
    }
    if (log.start !== before && retentionChannel.hasSubscribers) {
      retentionChannel.publish({ dir: this.channelDir, partition: log.partition, start: log.start, reason: 'retention' })
    }
  }

  /** With keepUnconsumed, the lowest committed offset of any group per partition; else null (keep nothing back). */
  private keepFrom (): number[] | null {
    return this.options.retention.keepUnconsumed === true ? lowestCommitted(this.groupHost) : null
  }

  get partitions (): number { return this[kLogs].length }

  private log (p: number): PartitionLog {
    const log = this[kLogs][p]
    if (log === undefined || !Number.isInteger(p)) throw unknownPartition(p, this[kLogs].length)
    return log
  }

  private writable_ (p: number): PartitionLog {
    if (this.isClosed || this.closing !== null) throw closed()
    if (this.options.readOnly) throw readOnlyError()
    return this.log(p)
  }

  /** Appends one record; resolves to its offset once durable (per the sync mode). */
  append (p: number, input: AppendInput): Promise<number> {
    try {
      const log = this.writable_(p)
      if (input instanceof Uint8Array) {
        const one = this.single
        one.values[0] = input
        one.timestamp = Date.now()
        try {
          return log.append(one, null, null)
        } finally {
          one.values[0] = NO_VALUE
        }
      }
      return log.append([normalizeRecord(input, Date.now())], null, null)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** Appends records atomically and contiguously in one commit; resolves to the first offset. */
  appendBatch (p: number, inputs: AppendInput[], options?: AppendBatchOptions): Promise<number> {
    try {
      const log = this.writable_(p)
      const records = allBytes(inputs) ? { values: inputs as Uint8Array[], timestamp: Date.now() } : normalizeRecords(inputs, Date.now())
      let checkpoints: Map<string, Buffer> | null = null
      let offsets: number[] | null = null
      if (options !== undefined) {
        if (!plainObject(options)) throw invalidArgument(`appendBatch options must be a plain object { checkpoint?, offsets? }, got ${kindOf(options)}`)
        // A misspelt `offset` or `checkpoints` would append without it, silently.
        for (const k in options) if (k !== 'checkpoint' && k !== 'offsets') throw invalidOption(k, 'unknown option of appendBatch(); it takes { checkpoint?, offsets? }')
        if (options.checkpoint !== undefined) {
          const c = options.checkpoint
          if (c === null || typeof c !== 'object' || typeof c.name !== 'string' || c.name.length === 0 || Buffer.byteLength(c.name) > 65535) {
            throw invalidArgument('checkpoint must be { name: non-empty string, value: Buffer | string }')
          }
          checkpoints = new Map([[c.name, bytesOf(c.value, 'checkpoint value')]])
        }
        if (options.offsets !== undefined) offsets = this.checkOffsets(log, options.offsets, inputs.length)
      }
      const count = Array.isArray(records) ? records.length : records.values.length
      if (count === 0 && checkpoints === null) return Promise.resolve(log.end)
      return log.append(records, checkpoints, offsets)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  private checkOffsets (log: PartitionLog, offsets: unknown, n: number): number[] {
    if (!Array.isArray(offsets) || offsets.length !== n) throw invalidArgument(`offsets must be an array with one offset per record (${n})`)
    let prev = log.pendingEnd - 1
    for (const o of offsets) {
      if (typeof o !== 'number' || !Number.isSafeInteger(o) || o < 0) throw invalidOffset(o)
      if (o <= prev) throw new WalError('INVALID_OFFSET', `explicit offsets must be strictly increasing and >= ${log.pendingEnd}; got ${o} after ${prev}`, { partition: log.partition, offset: o })
      prev = o
    }
    // One appendBatch is one batch, whose header stores the last offset as a 32-bit delta.
    if (n > 0 && (offsets as number[])[n - 1] - (offsets as number[])[0] > MAX_OFFSET_DELTA) {
      throw new WalError('INVALID_OFFSET', `the explicit offsets of one appendBatch must span less than 2^32; got ${(offsets as number[])[0]} to ${(offsets as number[])[n - 1]}`, { partition: log.partition })
    }
    return offsets as number[]
  }

  /** The record at `offset`; OFFSET_OUT_OF_RANGE outside [start, end). */
  async read (p: number, offset: number): Promise<WalRecord> {
    if (this.isClosed) throw closed()
    const log = this.log(p)
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw invalidOffset(offset)
    return readRecord(log, offset)
  }

  private reader (p: number, opts: IterateOptions | undefined): BatchReader {
    if (this.isClosed) throw closed()
    const log = this.log(p)
    const from = opts?.from
    const to = opts?.to
    if (from !== undefined && (typeof from !== 'number' || !Number.isSafeInteger(from) || from < 0)) throw invalidOffset(from)
    if (to !== undefined && (typeof to !== 'number' || !Number.isSafeInteger(to) || to < 0)) throw invalidOffset(to)
    log.refresh()
    if (from !== undefined && from < log.start) throw new WalError('OFFSET_TRIMMED', `offset ${from} of partition ${p} was trimmed; the first retained offset is ${log.start}`, { partition: p, offset: from, start: log.start })
    return new BatchReader(log, from ?? log.start, to ?? Number.MAX_SAFE_INTEGER)
  }

  /** Records in offset order, durable ones only, from `from` (default: start) up to `to` (exclusive). */
  iterate (p: number, opts?: IterateOptions): AsyncIterableIterator<WalRecord> {
    try {
      return new RecordIterator(this.reader(p, opts))
    } catch (err) {
      return failing(err)
    }
  }

  /** Like iterate, many records per step: the fast path for replay. */
  iterateBatches (p: number, opts?: IterateOptions): AsyncIterableIterator<WalRecord[]> {
    try {
      return new ChunkIterator(this.reader(p, opts))
    } catch (err) {
      return failing(err)
    }
  }

  offsets (p: number): Offsets {
    const log = this.log(p)
    log.refresh()
    // pending: appends are numbered when called, so the offset the next one gets is known before
    // the queued ones are durable (a writer can tell where its batch lands while others append).
    return { start: log.start, end: log.end, pending: log.pendingEnd }
  }

  /** The segments of partition p, oldest first, as the log knows them (for inspection tools). */
  segments (p: number): SegmentInfo[] {
    if (this.isClosed) throw closed()
    const log = this.log(p)
    log.refresh()
    return log.segments.map((seg) => {
      const empty = seg.nextOffset === seg.base
      return {
        file: path.basename(seg.path),
        base: seg.base,
        end: seg.nextOffset,
        sealed: seg.sealed,
        bytes: seg.dataEnd,
        fileBytes: seg.sealed ? seg.fileSize : Math.max(seg.fileSize, seg.dataEnd),
        minTimestamp: empty || seg.minTimestamp === Number.MAX_SAFE_INTEGER ? null : seg.minTimestamp,
        maxTimestamp: empty || seg.maxTimestamp === Number.MIN_SAFE_INTEGER ? null : seg.maxTimestamp
      }
    })
  }

  /** Deletes whole sealed segments entirely below `offset`. Resolves to the new start. */
  async trimBefore (p: number, offset: number): Promise<number> {
    const log = this.writable_(p)
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw invalidOffset(offset)
    if (offset > log.end) throw outOfRange(p, offset, log.start, log.end)
    const before = log.start
    const start = log.trimBefore(offset)
    if (start !== before && retentionChannel.hasSubscribers) retentionChannel.publish({ dir: this.channelDir, partition: p, start, reason: 'trim' })
    return start
  }

  /** The latest durable value of a checkpoint written with appendBatch(p, records, { checkpoint }). */
  checkpoint (p: number, name: string): Buffer | null {
    const log = this.log(p)
    if (typeof name !== 'string') throw invalidArgument('checkpoint name must be a string')
    log.refresh()
    return log.checkpoints.get(name) ?? null
  }

  /** A streamx Writable: each queued batch of chunks is one commit; 'finish' means all durable. */
  writable (p: number, options?: WritableOptions): WalWritable {
    this.writable_(p)
    const host = { appendBatch: (q: number, inputs: AppendInput[]) => this.appendBatch(q, inputs), maxBatchBytes: this.options.maxBatchBytes }
    return new WalWritable(host, p, options)
  }

  /** A streamx Readable of WalRecord; with `live: true` it tails new records as they become durable. */
  readable (p: number, options?: ReadableOptions): WalReadable {
    if (this.isClosed || this.closing !== null) throw closed()
    this.log(p)
    return new WalReadable(this.readableHost, p, options)
  }

  /** A consumer group: durable cursors per partition, in the meta log. */
  group (name: string): Group {
    if (this.isClosed) throw closed()
    return new Group(this.groupHost, checkGroupName(name))
  }

  /** Every group with its committed offset and lag per partition. */
  groups (): GroupInfo[] {
    if (this.isClosed) throw closed()
    return groupNames(this.groupHost).map((name) => this.group(name).info())
  }

  /** Waits for pending appends, syncs, and releases the lock. Seals nothing that is not full. */
  close (): Promise<void> {
    if (this.closing !== null) return this.closing
    // Readers' last autoCommits are issued before `closing` is set, which makes the meta log
    // refuse commits; close() waits for them before closing it.
    const finalCommits = Promise.all([...this[kReaders]].map((r) => r.endLive()))
    this.closing = (async () => {
      for (const t of this.timers) clearInterval(t)
      try {
        await finalCommits
        const results = await Promise.allSettled([...this[kLogs].map((l) => l.close()), this[kMeta]?.close()])
        const failed = results.find((r) => r.status === 'rejected')
        if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
      } finally {
        try { this.fdCache.closeAll() } catch {}
        this.isClosed = true
        this.lock?.release()
        this.lock = null
      }
    })()
    return this.closing
  }
}
