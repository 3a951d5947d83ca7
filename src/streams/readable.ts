import { offsetForTimestamp } from '../log/read.js'
import { Readable } from 'streamx'
import { WalError, closed, invalidArgument, invalidOffset, invalidOption, readOnly as readOnlyError } from '../errors.js'
import { BatchReader } from '../log/iterator.js'
import { kindOf, plainObject } from '../options.js'
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
  /**
   * Every intervalMs, and once more when the reader ends, is destroyed or the log closes, commit
   * everything before the record taken last: that one may still be in the consumer's hands.
   */
  autoCommit?: { intervalMs: number }
}

export interface ReadableHost {
  log (p: number): PartitionLog
  group (name: string): Group
  /** Takes the group's lease on p; GROUP_BUSY while a reader not being destroyed holds it. */
  lease (group: string, p: number, reader: WalReadable): void
  /** Where a reader of the group being destroyed on p leaves it (its last autoCommit), if one is. */
  handover (group: string, p: number): number | null
  release (group: string, p: number, reader: WalReadable): void
  track (reader: WalReadable): void
  untrack (reader: WalReadable): void
  readonly closing: boolean
  readonly readOnly: boolean
}

const KNOWN = new Set(['from', 'to', 'group', 'share', 'live', 'highWaterMark', 'onTrimmed', 'autoCommit'])

/** A misspelt option (`grup`) would silently read without a group: refused, like a wrong type. */
function checkOptions (opts: unknown): ReadableOptions {
  if (opts === undefined) return {}
  if (!plainObject(opts)) throw invalidOption('options', `readable() takes a plain options object or nothing, got ${kindOf(opts)}`)
  for (const k of Object.keys(opts as object)) if (!KNOWN.has(k)) throw invalidOption(k, `unknown option of readable(); it takes ${[...KNOWN].join(', ')}`)
  const o = opts as ReadableOptions
  for (const k of ['live', 'share'] as const) if (o[k] !== undefined && typeof o[k] !== 'boolean') throw invalidOption(k, `must be a boolean, got ${typeof o[k]}`)
  if (o.highWaterMark !== undefined && (!Number.isSafeInteger(o.highWaterMark) || o.highWaterMark < 1)) throw invalidOption('highWaterMark', `must be a positive integer number of bytes, got ${String(o.highWaterMark)}`)
  return o
}

/** The longest delay setInterval honours. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** Bytes read from disk at a time: raw bytes, decoded only as records are pushed. */
const CHUNK = 256 * 1024

/**
 * streamx calls _read as soon as its buffer is below its highWaterMark: with a consumer that
 * takes one record at a time (for await), each record taken would cost one _read pushing one
 * record. Its mark is set a quarter below the user's, and _read fills up to the user's, so a
 * refill pushes a quarter of the buffer at once and the buffer never holds more than asked.
 */
function refillBelow (highWaterMark: number): number {
  return Math.max(1, Math.floor(highWaterMark * 3 / 4))
}

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
  /** One past the last record handed to the consumer (not merely buffered): what commit() stores. */
  delivered = -1
  /** The offset of the record handed out last: autoCommit stores it, as everything before it is done. */
  private taken = -1
  /** Records buffered before a seek, still to be handed out: they must not move the positions back. */
  private stale = 0
  private autoCommitted: Promise<void> | null = null
  /** The last autoCommit was issued (on end, destroy or close): `taken` is what it stores. */
  private finalIssued = false
  /** Where a handover started this reader (see handover): where it leaves the group until it commits. */
  private handedFrom: number | null = null
  private failed = false

  private readonly opts: ReadableOptions
  /** The buffer is filled up to this many bytes, and refilled once it drops below refillBelow(). */
  private readonly fillTo: number

  constructor (private readonly host: ReadableHost, p: number, options?: ReadableOptions) {
    const opts = checkOptions(options)
    const hwm = opts.highWaterMark ?? 1024 * 1024
    super({ highWaterMark: refillBelow(hwm), byteLength: recordBytes })
    this.fillTo = hwm
    this.opts = opts
    this.log = host.log(p)
    this.partition = p
    this.groupName = opts.group ?? null
    if (opts.to !== undefined && (!Number.isSafeInteger(opts.to) || opts.to < 0)) throw invalidOffset(opts.to)
    if (opts.onTrimmed !== undefined && opts.onTrimmed !== 'error' && opts.onTrimmed !== 'earliest') throw invalidArgument("onTrimmed must be 'error' or 'earliest'")
    // Node's timers take at most 2^31 - 1 ms: a longer interval (say MAX_SAFE_INTEGER, meaning
    // "only at the end") would silently become 1 ms, a meta commit per record taken.
    if (opts.autoCommit !== undefined && (this.groupName === null || !Number.isSafeInteger(opts.autoCommit?.intervalMs) || opts.autoCommit.intervalMs <= 0 || opts.autoCommit.intervalMs > MAX_TIMER_MS)) {
      throw invalidArgument(`autoCommit needs a group and { intervalMs } from 1 to ${MAX_TIMER_MS} (about 24.8 days)`)
    }
    if (opts.autoCommit !== undefined && host.readOnly) throw readOnlyError()
    if (this.groupName !== null) host.group(this.groupName) // validates the name
    const leasing = this.groupName !== null && opts.live === true && opts.share !== true
    // Before the lease: a `from` that fails must not leave the group busy.
    this.handedFrom = leasing ? host.handover(this.groupName as string, p) : null
    this.startAt(this.resolveFrom(this.handedFrom))
    if (leasing) { host.lease(this.groupName as string, p, this); this.leased = true }
    // Track what leaves the buffer: that, not what was read from disk, is "delivered".
    const state = (this as unknown as { _readableState: { shift: () => WalRecord, queue: { length: number } } })._readableState
    this.queued = () => state.queue.length
    const shift = state.shift.bind(state)
    state.shift = () => {
      const rec = shift()
      if (rec === undefined || rec === null) return rec
      if (this.stale > 0) this.stale--
      else { this.taken = rec.offset; this.delivered = rec.offset + 1 }
      return rec
    }
    host.track(this)
    if (opts.autoCommit !== undefined) {
      this.timer = setInterval(() => { this.commitAt(this.taken).catch((err) => this.destroy(err)) }, opts.autoCommit.intervalMs)
      this.timer.unref()
    }
  }

  private readonly queued: () => number

  /**
   * `handover`: the last autoCommit of the group's reader being destroyed, still being written:
   * the position the group resumes from, though committed() does not show it yet.
   */
  private resolveFrom (handover: number | null): number {
    const from = this.opts.from ?? (this.groupName !== null ? 'committed' : 'earliest')
    const log = this.log
    log.refresh()
    if (from === 'earliest') return log.start
    if (from === 'latest') return log.end
    if (from === 'committed') {
      if (this.groupName === null) throw invalidArgument("from: 'committed' needs a group")
      return handover ?? this.host.group(this.groupName).committed(this.partition) ?? log.start
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
    this.handedFrom = null
    this.startAt(offset)
    this.delivered = offset
    this.taken = offset
    this.stale = this.queued()
    const wake = this.waiting
    if (wake !== null) wake()
  }

  /** wal.close(): end cleanly, after autoCommit's last commit (which close() waits for). */
  endLive (): Promise<void> {
    this.ended = true
    const wake = this.waiting
    if (wake !== null) wake()
    return this.finalCommit() ?? Promise.resolve()
  }

  /**
   * autoCommit's last commit, once: best effort, as the log may be closed under it. None for a
   * reader destroyed by an error: a failed pipeline's sink may not have processed what it took.
   */
  private finalCommit (): Promise<void> | null {
    if (this.timer === null) return this.autoCommitted
    clearInterval(this.timer)
    this.timer = null
    if (this.failed) return this.autoCommitted
    this.finalIssued = true
    this.autoCommitted = this.commitAt(this.taken).catch(() => {})
    return this.autoCommitted
  }

  /**
   * Pushes until streamx's buffer is full; true if it pushed anything. Records are decoded one at
   * a time as they are pushed (BatchReader.next), so what is alive is what streamx buffers. Once
   * ended, only the chunk already read is finished (no more I/O).
   */
  private pushRecords (reader: BatchReader): boolean {
    const state = (this as unknown as { _readableState: { buffered: number } })._readableState
    let pushed = false
    for (;;) {
      const rec = this.ended || this.host.closing ? reader.nextLoaded() : reader.next()
      if (rec === null) return pushed
      pushed = true
      this.push(rec)
      if (state.buffered >= this.fillTo) return true
    }
  }

  override _read (cb: (err: Error | null) => void): void {
    const reader = this.reader as BatchReader
    try {
      if (this.pushRecords(reader)) return cb(null)
    } catch (err) {
      // Only when the start is past where this reader stood: a segment gone from under a start
      // that did not move (deleted behind the log's back) would otherwise restart it there for ever.
      if (WalError.is(err, 'OFFSET_TRIMMED') && this.opts.onTrimmed === 'earliest' && this.log.start > reader.position) {
        // As a seek: nothing below the new start can be handed out any more, so commit() and
        // autoCommit move to it now, not at the next record (a live tail may wait long for one),
        // and records buffered before the skip still go out without moving them back.
        this.reposition(this.log.start)
        return this._read(cb)
      }
      return cb(err as Error)
    }
    const to = this.opts.to ?? Number.MAX_SAFE_INTEGER
    // Everything visible is read: `to` may lie in a gap between explicit offsets, never reached.
    const done = reader.position >= to
    const incomplete = this.opts.live === true ? this.opts.to !== undefined && !done : !done && reader.position < this.log.end
    if ((this.ended || this.host.closing) && incomplete) {
      // Cut short by close(): ending cleanly would pass for having read everything asked for.
      return cb(closed())
    }
    if (this.ended || this.host.closing || this.opts.live !== true || done) {
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
    try {
      this.log.refresh()
    } catch (err) {
      this.log.removeListener(wake)
      this.waiting = null
      cb(err as Error)
    }
  }

  /** Stores the delivered position as the group's committed offset. */
  async commit (): Promise<void> {
    if (this.groupName === null) throw invalidArgument('commit() needs a readable opened with a group')
    await this.commitAt(this.delivered)
  }

  private async commitAt (at: number): Promise<void> {
    const group = this.host.group(this.groupName as string)
    if (at >= 0 && at !== group.committed(this.partition)) {
      // Its own commit, issued after the one it was handed (the meta log keeps their order), now says where the group is.
      this.handedFrom = null
      await group.commit(this.partition, at)
      this.emit('commit', at)
    }
  }

  /**
   * streamx puts a record back by shifting the whole buffer out and pushing it in again, through
   * the shift that marks records handed out: none of them was. The record given back is no
   * longer in the consumer's hands, so the positions step back to it.
   */
  override unshift (rec: WalRecord): void {
    const { taken, delivered, stale } = this
    super.unshift(rec)
    this.taken = taken
    this.delivered = delivered
    this.stale = stale > 0 ? stale + 1 : 0
    const at = (rec as { offset?: unknown } | null)?.offset
    if (typeof at === 'number' && at < this.delivered) { this.delivered = at; this.taken = at }
  }

  /**
   * streamx's iterator schedules a buffer update (a queued microtask) for every record it takes.
   * While the buffer is at or above the refill mark an update has nothing to do (no _read, no
   * end), so records are taken from the buffer directly then; everything else (waiting, refill,
   * end, errors, return()) is streamx's own iterator.
   */
  override [Symbol.asyncIterator] (): AsyncIterableIterator<WalRecord> {
    const inner = super[Symbol.asyncIterator]() as AsyncIterator<WalRecord>
    const state = (this as unknown as { _readableState: { buffered: number, highWaterMark: number, read: () => WalRecord | null } })._readableState
    let waiting = false
    const slow = (): Promise<IteratorResult<WalRecord>> => {
      waiting = true
      return inner.next().finally(() => { waiting = false })
    }
    const it: AsyncIterableIterator<WalRecord> = {
      [Symbol.asyncIterator]: () => it,
      next: () => {
        if (!waiting && state.buffered >= state.highWaterMark && !this.destroying) {
          const rec = state.read()
          if (rec !== null) return Promise.resolve({ value: rec, done: false })
        }
        return slow()
      },
      return: (value?: unknown) => (inner.return as (v?: unknown) => Promise<IteratorResult<WalRecord>>)(value),
      throw: (err?: unknown) => (inner.throw as (e?: unknown) => Promise<IteratorResult<WalRecord>>)(err)
    }
    return it
  }

  /**
   * A reader being destroyed gives its lease up to a new one at once (a destroy, an RxJS
   * unsubscribe and resubscribe, as switchMap and retry do, must not meet GROUP_BUSY); the new
   * one starts where this one's last autoCommit leaves the group (a seek since included).
   */
  get handover (): number | null {
    if (!this.destroying) return null
    // Started from a handover and committed nothing since: the group is still where it was handed
    // over (that reader's last commit may still be in flight), not at committed().
    return this.finalIssued && this.taken >= 0 ? this.taken : this.handedFrom
  }

  override destroy (err?: Error | null): void {
    if (err !== undefined && err !== null) this.failed = true
    super.destroy(err)
  }

  /** streamx waits for a pending _read before _destroy: a live wait must end first. */
  override _predestroy (): void {
    this.endLive()
  }

  override _destroy (cb: (err: Error | null) => void): void {
    if (this.waiting !== null) this.log.removeListener(this.waiting)
    this.waiting = null
    // Ended, broken out of, or destroyed by the consumer: autoCommit's last commit, then the
    // lease goes, unless a new reader took it over meanwhile (see handover). Without one, at once.
    const last = this.finalCommit()
    if (last === null) return this.released(cb)
    last.then(() => this.released(cb))
  }

  private released (cb: (err: Error | null) => void): void {
    if (this.leased && this.groupName !== null) this.host.release(this.groupName, this.partition, this)
    this.host.untrack(this)
    cb(null)
  }
}
