import { offsetForTimestamp } from '../log/read.js'
import { Readable } from 'streamx'
import { WalError, invalidArgument, invalidOffset } from '../errors.js'
import { BatchReader } from '../log/iterator.js'
import type { PartitionLog } from '../log/partition-log.js'
import type { Group } from '../groups.js'
import type { WalRecord } from '../types.js'

export type FromPosition = 'earliest' | 'latest' | 'committed' | number | { timestamp: number | Date }

export interface ReadableOptions {
  from?: FromPosition
  /** Stop before this offset. */
  to?: number
  /** Consumer group: start at its committed offset; commit() and autoCommit store progress. */
  group?: string
  /** Allow several live readers of the same group and partition. Default false (GROUP_BUSY). */
  share?: boolean
  /** Keep tailing: records appear as they become durable. */
  live?: boolean
  /** Buffered bytes before backpressure. Default 1 MiB. */
  highWaterMark?: number
  /** What to do when positioned below a trimmed or expired offset. Default 'error' (OFFSET_TRIMMED). */
  onTrimmed?: 'error' | 'earliest'
  /** Commit what was delivered every intervalMs (at-least-once for a consumer that processes before the next tick). */
  autoCommit?: { intervalMs: number }
}

export interface ReadableHost {
  log (p: number): PartitionLog
  group (name: string): Group
  lease (group: string, p: number, reader: WalReadable): void
  release (group: string, p: number, reader: WalReadable): void
  track (reader: WalReadable): void
  untrack (reader: WalReadable): void
  readonly closing: boolean
}

/** Bytes read from disk at a time: raw bytes, decoded only as records are pushed. */
const CHUNK = 256 * 1024

/** Bytes a record holds, so highWaterMark counts real bytes (streamx counts 1 KiB per object otherwise). */
export function recordBytes (rec: WalRecord): number {
  let n = 48 + (rec.value === null ? 0 : rec.value.length) + (rec.key === null ? 0 : rec.key.length)
  for (const h of rec.headers) n += h.key.length + (h.value?.length ?? 0)
  return n
}

/**
 * A partition as a streamx Readable of WalRecord. Live tailing waits on the append path's
 * notification (never a timer): `_read` calls back only once it pushed, so streamx does not call
 * it again until then.
 */
export class WalReadable extends Readable {
  readonly partition: number
  readonly groupName: string | null
  private reader: BatchReader | null = null
  private readonly log: PartitionLog
  private waiting: (() => void) | null = null
  private ended = false
  private timer: NodeJS.Timeout | null = null
  private leased = false
  /** One past the last record handed to the consumer (not merely buffered). */
  delivered = -1

  constructor (private readonly host: ReadableHost, p: number, private readonly opts: ReadableOptions = {}) {
    super({ highWaterMark: opts.highWaterMark ?? 1024 * 1024, byteLength: recordBytes })
    this.log = host.log(p)
    this.partition = p
    this.groupName = opts.group ?? null
    if (opts.to !== undefined && (!Number.isSafeInteger(opts.to) || opts.to < 0)) throw invalidOffset(opts.to)
    if (opts.onTrimmed !== undefined && opts.onTrimmed !== 'error' && opts.onTrimmed !== 'earliest') throw invalidArgument("onTrimmed must be 'error' or 'earliest'")
    if (opts.autoCommit !== undefined && (this.groupName === null || !Number.isSafeInteger(opts.autoCommit?.intervalMs) || opts.autoCommit.intervalMs <= 0)) {
      throw invalidArgument('autoCommit needs a group and { intervalMs > 0 }')
    }
    if (this.groupName !== null) {
      host.group(this.groupName) // validates the name
      if (opts.live === true && opts.share !== true) { host.lease(this.groupName, p, this); this.leased = true }
    }
    this.startAt(this.resolveFrom())
    // Track what leaves the buffer: that, not what was read from disk, is "delivered".
    const state = (this as unknown as { _readableState: { shift: () => WalRecord } })._readableState
    const shift = state.shift.bind(state)
    state.shift = () => {
      const rec = shift()
      if (rec !== undefined && rec !== null) this.delivered = rec.offset + 1
      return rec
    }
    host.track(this)
    if (opts.autoCommit !== undefined) {
      this.timer = setInterval(() => { this.commit().catch((err) => this.destroy(err)) }, opts.autoCommit.intervalMs)
      this.timer.unref()
    }
  }

  private resolveFrom (): number {
    const from = this.opts.from ?? (this.groupName !== null ? 'committed' : 'earliest')
    const log = this.log
    log.refresh()
    if (from === 'earliest') return log.start
    if (from === 'latest') return log.end
    if (from === 'committed') {
      if (this.groupName === null) throw invalidArgument("from: 'committed' needs a group")
      return this.host.group(this.groupName).committed(this.partition) ?? log.start
    }
    if (typeof from === 'number') {
      if (!Number.isSafeInteger(from) || from < 0) throw invalidOffset(from)
      return from
    }
    if (from !== null && typeof from === 'object' && 'timestamp' in from) {
      const ts = from.timestamp instanceof Date ? from.timestamp.getTime() : from.timestamp
      if (typeof ts !== 'number' || !Number.isFinite(ts)) throw invalidArgument('from: { timestamp } needs milliseconds or a Date')
      return offsetForTimestamp(log, ts)
    }
    throw invalidArgument(`from must be 'earliest', 'latest', 'committed', an offset or { timestamp }, got ${JSON.stringify(from)}`)
  }

  private startAt (offset: number): void {
    this.reader = new BatchReader(this.log, offset, this.opts.to ?? Number.MAX_SAFE_INTEGER, CHUNK)
    if (this.delivered < 0 || offset < this.delivered) this.delivered = offset
  }

  /** Group seek: continue from `offset`; records already in streamx's buffer (at most highWaterMark) are still delivered. */
  reposition (offset: number): void {
    this.startAt(offset)
    this.delivered = offset
    const wake = this.waiting
    if (wake !== null) wake()
  }

  /** wal.close(): end cleanly. */
  endLive (): void {
    this.ended = true
    const wake = this.waiting
    if (wake !== null) wake()
  }

  /**
   * Pushes until streamx's buffer is full; true if it pushed anything. Records are decoded one at
   * a time as they are pushed (BatchReader.next), so what is alive is what streamx buffers. Once
   * ended, only the chunk already read is finished (no more I/O).
   */
  private pushRecords (reader: BatchReader): boolean {
    let pushed = false
    for (;;) {
      const rec = this.ended || this.host.closing ? reader.nextLoaded() : reader.next()
      if (rec === null) return pushed
      pushed = true
      if (!this.push(rec)) return true
    }
  }

  override _read (cb: (err: Error | null) => void): void {
    const reader = this.reader as BatchReader
    try {
      if (this.pushRecords(reader)) return cb(null)
    } catch (err) {
      if (WalError.is(err, 'OFFSET_TRIMMED') && this.opts.onTrimmed === 'earliest') {
        this.startAt(this.log.start)
        return this._read(cb)
      }
      return cb(err as Error)
    }
    const to = this.opts.to ?? Number.MAX_SAFE_INTEGER
    if (this.ended || this.host.closing || this.opts.live !== true || reader.position >= to) {
      this.push(null)
      return cb(null)
    }
    // Wait for the append path to publish more (or for close / seek).
    const wake = (): void => {
      this.log.removeListener(wake)
      this.waiting = null
      // Not inside the append path's publish loop: read on the next microtask.
      queueMicrotask(() => this._read(cb))
    }
    this.waiting = wake
    this.log.addListener(wake)
    // A read-only follower may have missed a commit between its last read and the watch starting.
    this.log.refresh()
  }

  /** Stores the delivered position as the group's committed offset. */
  async commit (): Promise<void> {
    if (this.groupName === null) throw invalidArgument('commit() needs a readable opened with a group')
    const group = this.host.group(this.groupName)
    const at = this.delivered
    if (at >= 0 && at !== group.committed(this.partition)) {
      await group.commit(this.partition, at)
      this.emit('commit', at)
    }
  }

  /** streamx waits for a pending _read before _destroy: a live wait must end first. */
  override _predestroy (): void {
    this.endLive()
  }

  override _destroy (cb: (err: Error | null) => void): void {
    if (this.timer !== null) clearInterval(this.timer)
    if (this.waiting !== null) this.log.removeListener(this.waiting)
    this.waiting = null
    if (this.leased && this.groupName !== null) this.host.release(this.groupName, this.partition, this)
    this.host.untrack(this)
    cb(null)
  }
}
