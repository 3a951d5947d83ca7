/**
 * mirror(): Kafka topic -> WAL, exactly once.
 *
 * Topic partition N goes to WAL partition N. Each fetched batch is appended with `appendBatch`
 * together with a checkpoint (`kafka-mirror/<topic>`) holding the next source offset, in one atomic
 * commit. On (re)start the mirror seeks Kafka to the offsets in those checkpoints, so a crash at any
 * point neither loses nor repeats a record. The Kafka consumer group is committed only so that Kafka
 * tools show the mirror's lag; it is never read back as a position.
 *
 * Offset modes:
 * - `'preserve'` (default): the WAL offset is the Kafka offset (explicit offsets; compaction holes,
 *   transaction markers and aborted records become gaps that reads skip). A Kafka position is then a
 *   valid WAL position, and a record's source (topic, partition, offset) is its WAL partition and
 *   offset plus the topic named in the checkpoint.
 * - `'dense'`: the WAL assigns dense offsets (the log may hold other records, also appended while
 *   the mirror runs). The checkpoint keeps a run-length map from WAL offsets to Kafka offsets (one
 *   entry per discontinuity, each with its length, pruned below the WAL's first retained offset);
 *   `sourceOffset()` reads it. A batch's WAL offsets are those the log assigns when appendBatch is
 *   called (`offsets(p).pending`, read in the same synchronous step), so the checkpoint committed
 *   with the batch places it exactly, whatever other writers have in flight.
 *
 * A checkpoint that no longer fits the topic (its offset was deleted before it was mirrored, or the
 * topic was re-created) stops the mirror, unless `onOffsetReset: 'earliest'` accepts the loss. A
 * topic re-created and grown past the checkpoint is told from the old one by the last mirrored
 * record, read back from Kafka at each start, reconnect and rebalance (checkLast).
 *
 * Records are stored byte for byte: key (null kept), value, headers in order with duplicates and
 * null values, timestamp. Only read_committed data is mirrored.
 */
import { EventEmitter } from 'node:events'
import type { Kafka } from 'kafkajs'
import { WalError, type RecordInput, type WalRecord, type WriteAhead, type WriteAheadOptions } from '../../src/index.js'
import {
  backoffDelay, checkInt, checkOneOf, checkTopic, deferred, isRetriable, refuseRemovedOptions, refuseUnknownOptions, resolvePort, settleWithin, sleep, toWalError, WalHandle, withDeadline,
  type ReconnectEvent, type ReconnectOptions
} from './common.js'
import { bool } from '../../src/options.js'
import type { KafkajsConsumerOptions } from './kafkajs-port.js'
import { KafkaPortError, type Consumption, type KafkaPort, type PartitionInfo, type PortBatch, type PortMessage } from './port.js'

export type OffsetMode = 'preserve' | 'dense'

export interface MirrorOptions {
  /** A kafkajs `Kafka` instance (its brokers, SSL, SASL and retry settings apply) or any KafkaPort. */
  kafka: Kafka | KafkaPort
  /** The source topic. */
  topic: string
  /** A WriteAhead, or a directory: then the mirror opens it with the partitions the topic needs (and adds more if the topic grows) and closes it at the end. */
  wal: WriteAhead | string
  /** Options for opening `wal` when it is a directory. */
  walOptions?: WriteAheadOptions
  /** `'preserve'` (default): WAL offset = Kafka offset. `'dense'`: WAL-assigned offsets plus a mapping. Fixed once a partition has been mirrored. */
  offsets?: OffsetMode
  /** Kafka consumer group (partition assignment, lag in Kafka tools). Default `writeahead-mirror.<topic>`; give each WAL its own. */
  groupId?: string
  /** Where a partition with no checkpoint yet starts. Default `'earliest'`. `'latest'` is the high watermark when mirror() starts, kept across reconnects. */
  from?: 'earliest' | 'latest'
  /** Stop by itself once every partition reached the high watermark seen at start (`done` resolves). Default false: run until stop(). */
  stopAtEnd?: boolean
  /** Fail (IO_ERROR) if Kafka cannot be reached within this time at start. Default 30000 ms. */
  startTimeoutMs?: number
  /** Backoff after the connection is lost (the mirror resumes from its checkpoints). */
  reconnect?: ReconnectOptions
  /** How often the Kafka consumer group offset is committed (display only). Default 1000 ms. */
  commitIntervalMs?: number
  /** kafkajs consumer settings (only when `kafka` is a kafkajs instance). */
  consumer?: KafkajsConsumerOptions
  /** Aborting stops the mirror like stop(). */
  signal?: AbortSignal
  /**
   * What to do when a partition cannot continue from its checkpoint because Kafka no longer has
   * that offset: the records from it on were deleted (retention, deleteRecords) before they were
   * mirrored, or the partition now ends before it (the topic was deleted and re-created, or
   * truncated). `'error'` (default, as `onTrimmed` of wal.readable()): stop with OFFSET_TRIMMED or
   * OFFSET_OUT_OF_RANGE. `'earliest'`: continue from the partition's earliest offset, emit
   * `offsetReset` and count it in the status (`offsetResets`, `skippedOffsets`). A re-created topic
   * cannot continue in `'preserve'` mode (its offsets restart below what the WAL holds): that stays
   * an error.
   */
  onOffsetReset?: 'error' | 'earliest'
}

/** Every option, so that one the interface lacks is refused (the compiler keeps the two equal). */
const MIRROR_OPTIONS = {
  kafka: true, topic: true, wal: true, walOptions: true, offsets: true, groupId: true, from: true, stopAtEnd: true,
  startTimeoutMs: true, reconnect: true, commitIntervalMs: true, consumer: true, signal: true, onOffsetReset: true
} as const satisfies Record<keyof MirrorOptions, true>

export interface MirrorPartitionStatus {
  partition: number
  /** Next Kafka offset to mirror: durable in the WAL checkpoint, or, before anything of the partition is mirrored, where it starts (-1: the topic's earliest). */
  next: number
  /** Kafka high watermark last seen. */
  high: number
  /** high - next, at least 0. */
  lag: number
  /** Records and bytes (key + value + headers) mirrored by this run. */
  records: number
  bytes: number
  /** Offset resets accepted by this run (`onOffsetReset: 'earliest'`). */
  offsetResets: number
  /** Kafka offsets those resets passed over: deleted before they were mirrored. */
  skippedOffsets: number
}

export interface MirrorSummary {
  topic: string
  records: number
  bytes: number
  reconnects: number
  /** Sums of the partitions' offsetResets and skippedOffsets. */
  offsetResets: number
  skippedOffsets: number
  durationMs: number
  partitions: MirrorPartitionStatus[]
}

export interface MirrorBatchEvent {
  partition: number
  records: number
  bytes: number
  next: number
  high: number
}

/**
 * A partition could not continue from its checkpoint and, with `onOffsetReset: 'earliest'`,
 * continued elsewhere.
 */
export interface MirrorOffsetResetEvent {
  partition: number
  /**
   * `'deleted'`: the offsets from `expected` up to `resumedAt` were deleted from Kafka (retention,
   * deleteRecords) before they were mirrored. `'restarted'`: the partition ended before
   * `expected` (the topic was deleted and re-created, or truncated; found while running, it may
   * have grown past `expected` again since), or Kafka now holds another record at the offset of the
   * last one mirrored (re-created and grown past `expected`): mirroring continues from its earliest
   * offset, after what the WAL already holds.
   */
  reason: 'deleted' | 'restarted'
  /** The Kafka offset the mirror was to continue from (its checkpoint). */
  expected: number
  /** The Kafka offset it continues from. */
  resumedAt: number
  /** Offsets passed over: resumedAt - expected for 'deleted', 0 for 'restarted'. */
  skipped: number
}

/** Dense mode: `count` records at consecutive WAL offsets from walOffset came from consecutive Kafka offsets from kafkaOffset. */
export type MirrorRun = [walOffset: number, kafkaOffset: number, count: number]

/** The durable state of one mirrored partition, as stored in the WAL checkpoint. */
export interface MirrorCheckpoint {
  /**
   * 2 for dense mode (runs with lengths), 1 for preserve mode and older dense checkpoints. A build
   * that knows only 1 refuses 2: it would take each run to end where the next begins, over other
   * writers' records between them.
   */
  v: 1 | 2
  topic: string
  partition: number
  mode: OffsetMode
  /** Next Kafka offset to mirror. */
  next: number
  /**
   * Dense mode: the mirrored records, in WAL order. Checkpoints written before runs had a length
   * hold [walOffset, kafkaOffset] pairs instead; such a run ends where the next begins (or where
   * the Kafka offsets say it must).
   */
  runs?: Array<MirrorRun | [number, number]>
  /**
   * Written by one interim build only (v: 1 with 3-element runs): [at, fingerprint] of the last
   * batch, placed at a guessed `at`. Ignored: if that build crashed before correcting a batch that
   * another writer's records displaced, its run stays where it was guessed.
   */
  last?: unknown
}

export function checkpointName (topic: string): string {
  return `kafka-mirror/${topic}`
}

/** The mirror checkpoint of a WAL partition, or null if the partition was never mirrored from `topic`. */
export function mirrorCheckpoint (wal: WriteAhead, topic: string, partition: number): MirrorCheckpoint | null {
  const raw = wal.checkpoint(partition, checkpointName(topic))
  if (raw === null) return null
  try {
    const c = JSON.parse(raw.toString()) as MirrorCheckpoint
    if ((c.v !== 1 && c.v !== 2) || typeof c.next !== 'number' || (c.mode !== 'preserve' && c.mode !== 'dense')) throw new Error('unknown format')
    const ints = (a: unknown, lengths: number[]): boolean => Array.isArray(a) && lengths.includes(a.length) && a.every((x) => Number.isSafeInteger(x) && x >= 0)
    if (c.runs !== undefined && !(Array.isArray(c.runs) && c.runs.every((r) => ints(r, [2, 3])))) throw new Error('malformed runs')
    return c
  } catch (err) {
    throw new WalError('CORRUPTED', `mirror checkpoint ${checkpointName(topic)} of partition ${partition} is unreadable: ${(err as Error).message}`, { partition })
  }
}

/**
 * The Kafka offset a mirrored WAL record came from (topic partition = WAL partition), or null if
 * unknown or not mirrored (in `'dense'` mode, a record another writer appended to the log).
 */
export function sourceOffset (wal: WriteAhead, topic: string, partition: number, walOffset: number): number | null {
  const c = mirrorCheckpoint(wal, topic, partition)
  if (c === null) return null
  if (c.mode === 'preserve') return walOffset
  const runs = settledRuns(c, () => wal.offsets(partition).end)
  let lo = 0
  let hi = runs.length - 1
  let found = -1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (runs[mid][0] <= walOffset) { found = mid; lo = mid + 1 } else hi = mid - 1
  }
  if (found < 0) return null
  const [w, k, count] = runs[found]
  return walOffset < w + count ? k + (walOffset - w) : null
}

/**
 * The settled runs of a dense checkpoint, each with its length. A run without one (written before
 * runs had lengths) ends where the next begins, and no later than the Kafka offsets allow: its
 * records came from Kafka offsets below the next run's (or below `next`, for the last). Records
 * another writer appended between two mirror runs are then outside both, unless Kafka offsets are
 * missing there too (transaction markers, compaction): that much an old checkpoint cannot tell.
 */
function settledRuns (c: MirrorCheckpoint, walEnd: () => number): MirrorRun[] {
  const runs = c.runs ?? []
  const out: MirrorRun[] = new Array(runs.length)
  for (let i = 0; i < runs.length; i++) {
    const r = runs[i]
    if (r.length === 3) { out[i] = r; continue }
    const [w, k] = r
    const after = runs[i + 1]
    let count: number
    if (after !== undefined) count = after[1] > k ? Math.min(after[0] - w, after[1] - k) : after[0] - w
    else count = Math.min(c.next - k, walEnd() - w)
    out[i] = [w, k, Math.max(0, count)]
  }
  return out
}

/**
 * The runs of a dense partition together with their JSON, kept up to date as runs are added and
 * pruned. A gap-heavy topic has a run per record, and every batch writes all of them in its
 * checkpoint: stringified whole per batch, they made the mirror quadratic in the number of runs.
 * Here a batch serialises only the runs it changed; the rest of the text is reused (and the WAL
 * copies it, once, into the batch).
 */
class DenseRuns {
  readonly runs: MirrorRun[]
  /** The JSON of every run but the last (which the next record may still extend), comma-separated. */
  private sealed: string

  constructor (runs: MirrorRun[] = []) {
    this.runs = runs
    this.sealed = runs.slice(0, -1).map((r) => JSON.stringify(r)).join(',')
  }

  /** Appends `count` records from Kafka offset `kafka` at WAL offset `wal`, extending the last run when they continue it. */
  add (wal: number, kafka: number, count: number): void {
    const runs = this.runs
    const last = runs[runs.length - 1]
    if (last !== undefined && last[0] + last[2] === wal && last[1] + last[2] === kafka) { last[2] += count; return }
    if (last !== undefined) this.sealed = this.sealed.length === 0 ? JSON.stringify(last) : this.sealed + ',' + JSON.stringify(last)
    runs.push([wal, kafka, count])
  }

  /** Drops the runs wholly below the log's first retained offset: they describe nothing any more. */
  prune (start: number): void {
    const runs = this.runs
    let n = 0
    let chars = 0
    while (n < runs.length && runs[n][0] + runs[n][2] <= start) chars += JSON.stringify(runs[n++]).length + 1
    if (n === 0) return
    runs.splice(0, n)
    // All but the last run are sealed: what is left of them follows the dropped runs' text and commas.
    this.sealed = runs.length <= 1 ? '' : this.sealed.slice(chars)
  }

  /** What undo() returns to: taken before a batch adds its runs. */
  mark (): { length: number, lastCount: number, sealed: string } {
    const n = this.runs.length
    return { length: n, lastCount: n > 0 ? this.runs[n - 1][2] : 0, sealed: this.sealed }
  }

  /** Undoes the runs added since `mark()` (a batch that failed must not leave them for the next one to extend). */
  undo (m: { length: number, lastCount: number, sealed: string }): void {
    this.runs.length = m.length
    if (m.length > 0) this.runs[m.length - 1][2] = m.lastCount
    this.sealed = m.sealed
  }

  /** The runs as JSON, byte for byte what JSON.stringify(this.runs) gives. */
  json (): string {
    const n = this.runs.length
    if (n === 0) return '[]'
    const last = JSON.stringify(this.runs[n - 1])
    return n === 1 ? `[${last}]` : `[${this.sealed},${last}]`
  }

  /** json().length (and its size in bytes: only digits, commas and brackets), without building it. */
  jsonLength (): number {
    const n = this.runs.length
    if (n === 0) return 2
    const last = JSON.stringify(this.runs[n - 1]).length
    return n === 1 ? last + 2 : this.sealed.length + last + 3
  }
}

/**
 * A dense checkpoint as JSON, byte for byte what JSON.stringify gives for `{ v: 2, topic,
 * partition, mode: 'dense', next, runs }` (no `runs` while there are none), around the runs' kept
 * text; `bytes`: its size, without building it.
 */
function denseCheckpoint (topic: string, partition: number, next: number, runs: DenseRuns): { json: () => string, bytes: () => number } {
  const head = `{"v":2,"topic":${JSON.stringify(topic)},"partition":${partition},"mode":"dense","next":${next}`
  return {
    json: () => runs.runs.length === 0 ? head + '}' : `${head},"runs":${runs.json()}}`,
    bytes: () => Buffer.byteLength(head) + (runs.runs.length === 0 ? 1 : ',"runs":}'.length + runs.jsonLength())
  }
}

interface PartitionState {
  next: number
  high: number
  records: number
  bytes: number
  /** Dense mode: the runs, as the latest checkpoint has them. */
  runs: DenseRuns
  committedToKafka: number
  mode: OffsetMode | null
  offsetResets: number
  skippedOffsets: number
  /** The checkpoint offset a reset at load replaced (a reconnect finding it still there does not count it again). */
  resetOf: number
  /**
   * The partition was assigned again within a session (a rebalance, also kafkajs rejoining its
   * group after a fetch found the topic gone): the last mirrored record is checked before the next
   * batch is appended (see checkLast).
   */
  recheck: boolean
  /**
   * Dense mode: the last run was loaded from a checkpoint written before runs had a length, so where
   * it ends is a guess (see settledRuns), or by the interim build that placed its last batch by a
   * guess (see MirrorCheckpoint.last): its last record may be another writer's, and is not checked
   * until the mirror appends records after it.
   */
  lastGuessed: boolean
}

function newState (next: number, high: number): PartitionState {
  return { next, high, records: 0, bytes: 0, runs: new DenseRuns(), committedToKafka: -1, mode: null, offsetResets: 0, skippedOffsets: 0, resetOf: -1, recheck: false, lastGuessed: false }
}

/** What Kafka holds at the offset of the last mirrored record, where that is not the record the WAL holds. */
interface Replaced {
  /** The Kafka offset of the last record mirrored. */
  offset: number
  /** What Kafka holds there instead, in words; `differs`: for another record, how it differs. */
  found: string
  differs?: string
}

/** The bytes of a key, value or header value, null kept apart from empty. */
function sameBytes (a: Buffer | null, b: Buffer | null): boolean {
  return a === null || b === null ? a === b : a.equals(b)
}

/** The parts in which a Kafka record and the WAL's copy of it differ (the mirror stores each byte for byte). */
function differences (k: PortMessage, w: WalRecord): string[] {
  const out: string[] = []
  if (k.timestamp !== w.timestamp) out.push('timestamp')
  if (!sameBytes(k.key, w.key)) out.push('key')
  // A tombstone stored as an empty value is the same record: builds before the WAL had tombstones
  // wrote one so (their nullValues: 'empty'), and such a WAL still continues.
  if (!sameBytes(k.value, w.value) && !(k.value === null && w.value !== null && w.value.length === 0)) out.push('value')
  let headers = k.headers.length !== w.headers.length
  for (let i = 0; !headers && i < k.headers.length; i++) headers = k.headers[i].key !== w.headers[i].key || !sameBytes(k.headers[i].value, w.headers[i].value)
  if (headers) out.push('headers')
  return out
}

const BATCH_OVERHEAD = 64
/** Longest wait for Kafka clients to close when stopping. */
const TEARDOWN_MS = 10_000

/**
 * Events: `'batch'` (MirrorBatchEvent) after each appended batch; `'connected'` when a session
 * consumes; `'reconnect'` (ReconnectEvent) before reconnecting; `'offsetReset'`
 * (MirrorOffsetResetEvent) when a partition continues elsewhere than its checkpoint
 * (`onOffsetReset: 'earliest'`; one found while starting is emitted once mirror() has resolved).
 */
export interface Mirror extends EventEmitter {
  readonly topic: string
  /** Resolves with the summary when the mirror stops (stop(), signal, or stopAtEnd); rejects with a WalError on a fatal error. */
  readonly done: Promise<MirrorSummary>
  /** The WAL being written (null before it is opened). */
  readonly wal: WriteAhead | null
  status (): MirrorSummary
  /** Refreshes the high watermarks (lag) from Kafka. */
  refresh (): Promise<void>
  /** Stops consuming after the batch in progress; resolves once everything is closed. */
  stop (): Promise<MirrorSummary>
}

class MirrorImpl extends EventEmitter implements Mirror {
  readonly topic: string
  readonly done: Promise<MirrorSummary>
  private readonly port: KafkaPort
  private readonly ownsPort: boolean
  private readonly handle: WalHandle
  private readonly mode: OffsetMode
  private readonly groupId: string
  private readonly from: 'earliest' | 'latest'
  private readonly startTimeoutMs: number
  private readonly commitIntervalMs: number
  private readonly onOffsetReset: 'error' | 'earliest'
  private readonly state = new Map<number, PartitionState>()
  private readonly stopCtl = new AbortController()
  private readonly started = deferred<void>()
  private targets: Map<number, PartitionInfo> | null = null
  private consumption: Consumption | null = null
  private sessionEnd: ((err: Error | null) => void) | null = null
  private reconnects = 0
  private readonly t0 = Date.now()
  private commitTimer: NodeJS.Timeout | null = null
  private progressed = false

  constructor (private readonly o: MirrorOptions) {
    super()
    if (o === null || typeof o !== 'object') throw new WalError('INVALID_ARGUMENT', 'mirror(options): options must be an object')
    refuseRemovedOptions(o)
    refuseUnknownOptions('mirror', o, MIRROR_OPTIONS)
    this.topic = checkTopic(o.topic)
    this.mode = checkOneOf('offsets', o.offsets, ['preserve', 'dense'] as const, 'preserve')
    bool('stopAtEnd', o.stopAtEnd, false)
    this.from = checkOneOf('from', o.from, ['earliest', 'latest'] as const, 'earliest')
    this.startTimeoutMs = checkInt('startTimeoutMs', o.startTimeoutMs, 1, 30_000)
    this.commitIntervalMs = checkInt('commitIntervalMs', o.commitIntervalMs, 10, 1000)
    this.onOffsetReset = checkOneOf('onOffsetReset', o.onOffsetReset, ['error', 'earliest'] as const, 'error')
    checkInt('reconnect.maxAttempts', o.reconnect?.maxAttempts, 0, Infinity)
    if (o.groupId !== undefined && (typeof o.groupId !== 'string' || o.groupId.length === 0)) throw new WalError('INVALID_OPTION', 'option groupId: must be a non-empty string', { option: 'groupId' })
    this.groupId = o.groupId ?? `writeahead-mirror.${this.topic}`
    this.handle = new WalHandle(o.wal, o.walOptions)
    const { port, owned } = resolvePort(o.kafka, { consumer: o.consumer })
    this.port = port
    this.ownsPort = owned
    if (o.signal !== undefined) {
      if (o.signal.aborted) this.stopCtl.abort()
      else o.signal.addEventListener('abort', () => { void this.stop() }, { once: true })
    }
    this.done = this.run()
    this.done.catch(() => {})
    // Events found while starting (an offset reset at load) are emitted once mirror() has resolved
    // and its caller could attach listeners.
    this.started.promise.then(() => setImmediate(() => {
      const early = this.early ?? []
      this.early = null
      for (const emit of early) emit()
    }), () => {})
  }

  private early: Array<() => void> | null = []

  /** emit(), or queued until the caller of mirror() could listen. */
  private emitSoon (event: string, payload: unknown): void {
    if (this.early === null) this.emit(event, payload)
    else this.early.push(() => this.emit(event, payload))
  }

  get wal (): WriteAhead | null { return this.handle.wal }

  get whenStarted (): Promise<void> { return this.started.promise }

  status (): MirrorSummary {
    const partitions: MirrorPartitionStatus[] = [...this.state.entries()].sort((a, b) => a[0] - b[0]).map(([partition, s]) => ({
      partition, next: s.next, high: s.high, lag: Math.max(0, s.high - s.next), records: s.records, bytes: s.bytes, offsetResets: s.offsetResets, skippedOffsets: s.skippedOffsets
    }))
    return {
      topic: this.topic,
      records: partitions.reduce((n, p) => n + p.records, 0),
      bytes: partitions.reduce((n, p) => n + p.bytes, 0),
      reconnects: this.reconnects,
      offsetResets: partitions.reduce((n, p) => n + p.offsetResets, 0),
      skippedOffsets: partitions.reduce((n, p) => n + p.skippedOffsets, 0),
      durationMs: Date.now() - this.t0,
      partitions
    }
  }

  async refresh (): Promise<void> {
    const info = await this.port.describe(this.topic)
    for (const b of info) {
      const s = this.state.get(b.partition)
      if (s !== undefined) s.high = b.high
    }
  }

  async stop (): Promise<MirrorSummary> {
    if (!this.stopCtl.signal.aborted) {
      this.stopCtl.abort()
      this.sessionEnd?.(null)
    }
    return this.done.catch(() => this.status())
  }

  private get stopping (): boolean { return this.stopCtl.signal.aborted }

  private async run (): Promise<MirrorSummary> {
    const deadline = Date.now() + this.startTimeoutMs
    let everStarted = false
    let attempt = 0
    let lastError: Error | null = null
    try {
      while (!this.stopping) {
        let err: Error | null
        this.progressed = false
        try {
          err = await this.session(everStarted ? Infinity : deadline - Date.now())
        } catch (e) {
          err = e as Error
        }
        if (this.consumption !== null) {
          const c = this.consumption
          if (err === null) await settleWithin(this.commitToKafka(), TEARDOWN_MS)
          this.consumption = null
          await settleWithin(c.stop(), TEARDOWN_MS)
        }
        everStarted ||= this.everConsumed
        if (err === null || this.stopping) break
        if (!isRetriable(err)) throw toWalError(err, `mirror of ${this.topic}`, { topic: this.topic })
        if (!(err instanceof KafkaPortError && err.message.includes('no answer within'))) lastError = err
        if (!everStarted && Date.now() >= deadline) {
          throw toWalError(lastError ?? err, `mirror of ${this.topic}: could not start within ${this.startTimeoutMs} ms`, { topic: this.topic })
        }
        attempt = this.progressed ? 1 : attempt + 1
        const max = this.o.reconnect?.maxAttempts ?? Infinity
        if (attempt > max) throw toWalError(err, `mirror of ${this.topic}: gave up after ${max} reconnect attempts`, { topic: this.topic })
        let delayMs = backoffDelay(attempt, this.o.reconnect ?? {})
        if (!everStarted) delayMs = Math.min(delayMs, Math.max(0, deadline - Date.now()))
        this.reconnects++
        this.emit('reconnect', { attempt, delayMs, error: err } satisfies ReconnectEvent)
        await sleep(delayMs, this.stopCtl.signal)
      }
      return this.status()
    } finally {
      if (this.commitTimer !== null) clearInterval(this.commitTimer)
      this.commitTimer = null
      if (this.consumption !== null) await settleWithin(this.consumption.stop(), TEARDOWN_MS)
      this.consumption = null
      if (this.ownsPort) await settleWithin(this.port.close(), TEARDOWN_MS)
      await this.handle.close()
    }
  }

  private everConsumed = false
  /** Positions were loaded once: later, 'latest' no longer means a partition's current end. */
  private loaded = false
  private sessions = 0
  private readonly queues = new Map<number, Promise<unknown>>()

  private serial (p: number, fn: () => Promise<void>): Promise<void> {
    const run = (this.queues.get(p) ?? Promise.resolve()).then(fn)
    this.queues.set(p, run.catch(() => {}))
    return run
  }

  /** One connection's worth of mirroring. Resolves with null when stopped, or with the error that ended it. */
  private async session (budgetMs: number): Promise<Error | null> {
    const ended = deferred<Error | null>()
    this.sessionEnd = (err) => ended.resolve(err)
    if (this.stopping) return null
    // From here on, batches an earlier consumer still delivers are refused (see onBatch below).
    const session = ++this.sessions
    const info = await withDeadline(this.port.describe(this.topic), budgetMs, `mirror of ${this.topic}: reaching Kafka`)
    // Appends of an earlier session can outlive its teardown, which stops waiting for Kafka after
    // TEARDOWN_MS (a sync slower than that, or a consumer that would not stop). They must land
    // before positions are read from the WAL's checkpoints: read earlier, their records would be
    // fetched and appended again ('dense') or refused as INVALID_OFFSET ('preserve'). Those already
    // under way are waited for here; a local append always ends, so the wait is not bounded.
    await Promise.all(this.queues.values())
    // stop() while describing or draining: nothing to join a consumer group for.
    if (this.stopping) return null
    const wal = await this.handle.ensure(info.length, `mirroring topic ${this.topic} (${info.length} partitions)`)
    await this.load(wal, info, budgetMs)
    // stop() while load() read the last mirrored records back from Kafka.
    if (this.stopping) return null
    if (this.o.stopAtEnd === true && this.targets === null) this.targets = new Map(info.map((b) => [b.partition, b]))
    if (this.caughtUp()) { this.started.resolve(); return null }
    // Partitions assigned in this session: load() checked them; assigned again, they are checked again.
    const assigned = new Set<number>()
    const consuming = this.port.consume({
      topic: this.topic,
      groupId: this.groupId,
      position: (p) => {
        const s = this.state.get(p)
        if (s !== undefined && assigned.has(p)) s.recheck = true
        assigned.add(p)
        return s === undefined || s.next < 0 ? this.from : s.next
      },
      // One batch at a time per partition, and only from the current session's consumer.
      onBatch: (b) => this.serial(b.partition, () => {
        if (session !== this.sessions) throw new KafkaPortError('kafka', 'a batch from a replaced consumer')
        return this.onBatch(b)
      }),
      onError: (err) => ended.resolve(err)
    })
    let consumption: Consumption
    try {
      consumption = await withDeadline(consuming, budgetMs, `mirror of ${this.topic}: joining the consumer group ${this.groupId}`)
    } catch (err) {
      consuming.then((c) => c.stop(), () => {}).catch(() => {}) // it may still start: stop it then
      throw err
    }
    this.consumption = consumption
    this.everConsumed = true
    this.started.resolve()
    this.emit('connected')
    if (this.commitTimer === null) {
      this.commitTimer = setInterval(() => { this.commitToKafka().catch(() => {}) }, this.commitIntervalMs)
      this.commitTimer.unref()
    }
    if (this.stopping) return null
    return ended.promise
  }

  /** Loads each partition's position from the WAL's checkpoint. */
  private async load (wal: WriteAhead, info: PartitionInfo[], budgetMs: number): Promise<void> {
    /** Partitions to continue inside the topic's offsets, past its earliest: checked by checkLast. */
    const inside: Array<{ b: PartitionInfo, s: PartitionState, next: number }> = []
    for (const b of info) {
      const c = mirrorCheckpoint(wal, this.topic, b.partition)
      const prev = this.state.get(b.partition)
      // Where a partition without a checkpoint starts: 'latest' is resolved once, at the first
      // session. Resolved again after a reconnect, it would skip what was produced meanwhile; and a
      // partition first seen later (the topic grew) holds only records produced since the start.
      const start = prev !== undefined ? prev.next : this.from !== 'latest' ? -1 : this.loaded ? b.low : b.high
      if (c !== null && c.mode !== this.mode) {
        throw new WalError('INVALID_OPTION', `option offsets: partition ${b.partition} was mirrored with offsets: '${c.mode}', cannot continue with '${this.mode}'`, { option: 'offsets', partition: b.partition })
      }
      if (c === null && this.mode === 'preserve') {
        const end = wal.offsets(b.partition).end
        const first = start >= 0 ? start : b.low
        if (end > first) {
          throw new WalError('INVALID_ARGUMENT', `WAL partition ${b.partition} already holds offsets up to ${end - 1}, so Kafka offset ${first} of ${this.topic} cannot keep its offset: use an empty log or offsets: 'dense'`, { partition: b.partition })
        }
      }
      const s = newState(c?.next ?? start, b.high)
      if (prev !== undefined) {
        s.records = prev.records
        s.bytes = prev.bytes
        s.committedToKafka = prev.committedToKafka
        s.offsetResets = prev.offsetResets
        s.skippedOffsets = prev.skippedOffsets
        s.resetOf = prev.resetOf
      }
      if (c !== null) {
        s.mode = c.mode
        if (c.mode === 'dense') {
          s.runs = new DenseRuns(settledRuns(c, () => wal.offsets(b.partition).end).map((r) => [...r] as MirrorRun))
          // (Also a checkpoint of the interim build that wrote `last`: its last batch may be misplaced.)
          s.lastGuessed = c.last !== undefined || (c.runs !== undefined && c.runs.length > 0 && c.runs[c.runs.length - 1].length === 2)
        }
        // A reset at an earlier session of this run, with nothing mirrored since: the checkpoint
        // still names the offset it replaced.
        if (prev !== undefined && prev.resetOf === c.next) s.next = prev.next
        // The checkpoint's offset must still be in the partition, or kafkajs would move to the
        // earliest offset without a word: a hole, or (the topic re-created) nothing mirrored.
        else if (c.next < b.low || c.next > b.high) {
          this.offsetReset(b.partition, s, c.next, b.low, c.next < b.low ? 'deleted' : 'restarted', b)
          s.resetOf = c.next
        } else if (c.next > b.low) inside.push({ b, s, next: c.next })
      }
      this.state.set(b.partition, s)
    }
    // Inside the offsets is not enough: a topic deleted and re-created may have grown past the
    // checkpoint already. Its offsets then look like the old topic's (kafkajs cannot read topic IDs),
    // and the mirror would continue at the checkpoint: the new records below it never mirrored, and
    // ('preserve') the later ones stored under offsets mixed with the old topic's.
    const replaced = await this.checkLast(wal, inside.map((x) => x.b.partition), budgetMs)
    for (const { b, s, next } of inside) {
      const r = replaced.get(b.partition)
      if (r === undefined) continue
      this.offsetReset(b.partition, s, next, b.low, 'restarted', b, r)
      s.resetOf = next
    }
    this.loaded = true
  }

  /**
   * The last record mirrored into WAL partition p and the Kafka offset it came from, or null if
   * the WAL holds none (nothing mirrored but transaction markers and aborted records, or WAL
   * retention or trimBefore removed it), or, in dense mode, cannot tell it exactly (lastGuessed)
   * or it came from before a 'restarted' reset (at or past the position the reset moved back to).
   */
  private async lastMirrored (wal: WriteAhead, p: number, s: PartitionState): Promise<{ offset: number, record: WalRecord } | null> {
    const { start, end } = wal.offsets(p)
    let walOffset = -1
    let kafkaOffset = -1
    if (this.mode === 'preserve') {
      // Every record of the partition is mirrored, at its Kafka offset (the log was empty when
      // mirroring began): the last is at end - 1, whatever markers or compaction left after it.
      // Records past the checkpoint are not the mirror's (appended by hand: its next batch fails
      // with INVALID_OFFSET, which says so better than a mismatch would).
      if (end > s.next) return null
      walOffset = kafkaOffset = end - 1
    } else {
      if (s.lastGuessed) return null
      // The log may hold other writers' records: the last run of the map is the mirror's.
      const runs = s.runs.runs
      for (let i = runs.length - 1; i >= 0 && walOffset < 0; i--) {
        const [w, k, count] = runs[i]
        if (count > 0) { walOffset = w + count - 1; kafkaOffset = k + count - 1 }
      }
      // At or past the position: mirrored from the partition before a reset moved it back (the
      // topic re-created, onOffsetReset: 'earliest'), and nothing of the new one since. Checked
      // against the new topic, a rebalance or restart found the same mismatch again, and reset
      // (and reconnected) once more.
      if (kafkaOffset >= s.next) return null
    }
    if (walOffset < start || walOffset >= end) return null
    try {
      return { offset: kafkaOffset, record: await wal.read(p, walOffset) }
    } catch (err) {
      // Trimmed meanwhile (retention runs in the background).
      if (err instanceof WalError && (err.code === 'OFFSET_TRIMMED' || err.code === 'OFFSET_OUT_OF_RANGE')) return null
      throw err
    }
  }

  /**
   * The partitions of `parts` whose last mirrored record Kafka no longer holds as the WAL does: at
   * its offset Kafka has another record, or a transaction marker or aborted record (the offset held
   * committed data when it was mirrored, and Kafka never turns one into the other): the topic was
   * deleted and re-created (or its log replaced, as an unclean leader election can) since. One
   * fetch of a record batch per partition, through the port's optional readAt (a port without it is
   * not checked). Cannot tell, and lets the partition continue, where Kafka holds nothing at that
   * offset (compaction removed the record, or retention or deleteRecords moved the earliest offset
   * past it) or the WAL holds no mirrored record; nor where the new topic holds an identical
   * record at that offset (same timestamp, key, value and headers).
   */
  private async checkLast (wal: WriteAhead, parts: number[], budgetMs: number): Promise<Map<number, Replaced>> {
    const out = new Map<number, Replaced>()
    if (typeof this.port.readAt !== 'function' || parts.length === 0) return out
    const asks: Array<{ partition: number, offset: number, record: WalRecord }> = []
    for (const p of parts) {
      const s = this.state.get(p)
      const last = s === undefined ? null : await this.lastMirrored(wal, p, s)
      if (last !== null) asks.push({ partition: p, ...last })
    }
    if (asks.length === 0) return out
    const found = await withDeadline(this.port.readAt(this.topic, asks.map(({ partition, offset }) => ({ partition, offset }))), budgetMs,
      `mirror of ${this.topic}: reading the last mirrored record${asks.length > 1 ? 's' : ''}`)
    for (let i = 0; i < asks.length; i++) {
      const { partition, offset, record } = asks[i]
      const k = found[i]
      if (k === null || k === undefined) continue
      if (k === 'not-data') {
        out.set(partition, { offset, found: 'a transaction marker or a record of an aborted transaction' })
        continue
      }
      const diff = differences(k, record)
      if (diff.length > 0) out.set(partition, { offset, found: 'another record', differs: `its ${diff.join(', ')} differ${diff.length > 1 ? '' : 's'}` })
    }
    return out
  }

  /**
   * A partition cannot continue at `expected`: fails with a WalError saying what happened and what to
   * do, or (onOffsetReset: 'earliest') continues from `resumedAt`, emitting `offsetReset`.
   */
  private offsetReset (p: number, s: PartitionState, expected: number, resumedAt: number, reason: 'deleted' | 'restarted', b: { low: number, high: number }, replaced?: Replaced): void {
    if (reason === 'deleted') {
      if (this.onOffsetReset === 'error') {
        throw new WalError('OFFSET_TRIMMED', `mirror of ${this.topic}: partition ${p} is to continue from Kafka offset ${expected} (its checkpoint in the WAL), but Kafka now starts it at ${b.low}: offsets ${expected} to ${b.low - 1} were deleted (retention or deleteRecords) before they were mirrored. The WAL holds what came before offset ${expected}. To accept the loss and continue from offset ${b.low}, start the mirror with onOffsetReset: 'earliest'`,
          { partition: p, offset: expected, start: b.low, topic: this.topic })
      }
    } else if (this.onOffsetReset === 'error' || this.mode === 'preserve') {
      const what = this.mode === 'preserve'
        ? `With offsets: 'preserve' the new offsets cannot go into this WAL (they restart below what it holds): mirror the topic into a new WAL`
        : `To mirror the partition again from its earliest offset (${b.low}), after what the WAL already holds, start the mirror with onOffsetReset: 'earliest'`
      // Found while running, the partition may have grown past `expected` again by the time Kafka
      // moved the consumer back to its beginning (b.low): it still restarted below `expected`.
      const where = replaced !== undefined
        ? `Kafka offset ${replaced.offset}, the last it mirrored, now holds ${replaced.found} (${replaced.differs !== undefined ? `${replaced.differs}; ` : ''}the partition has offsets ${b.low} to ${b.high - 1})`
        : b.high < expected ? `the partition now ends at ${b.high}` : `Kafka moved the consumer back to offset ${b.low} (the partition ended below ${expected}, and has grown to ${b.high} since)`
      const cause = replaced !== undefined ? 'the topic was deleted and re-created (or its log replaced)' : 'the topic was deleted and re-created, or truncated,'
      throw new WalError('OFFSET_OUT_OF_RANGE', `mirror of ${this.topic}: partition ${p} is to continue from Kafka offset ${expected} (its checkpoint in the WAL), but ${where}: ${cause} since it was mirrored. The WAL holds what came before offset ${expected}. ${what}`,
        { partition: p, offset: expected, start: b.low, end: b.high, topic: this.topic, ...(replaced !== undefined ? { lastMirrored: replaced.offset } : {}) })
    }
    const skipped = reason === 'deleted' ? Math.max(0, resumedAt - expected) : 0
    s.next = resumedAt
    s.offsetResets++
    s.skippedOffsets += skipped
    this.emitSoon('offsetReset', { partition: p, reason, expected, resumedAt, skipped } satisfies MirrorOffsetResetEvent)
  }

  private caughtUp (): boolean {
    if (this.o.stopAtEnd !== true || this.targets === null) return false
    for (const [p, { low, high }] of this.targets) {
      const s = this.state.get(p)
      if (s === undefined) return false
      // ('latest' starts a partition at its high watermark, so it passes here.)
      if (s.next >= high) continue
      // A partition never mirrored that is empty has nothing to wait for.
      if (s.next < 0 && low >= high) continue
      return false
    }
    return true
  }

  private async commitToKafka (): Promise<void> {
    const c = this.consumption
    if (c === null) return
    for (const [p, s] of this.state) {
      if (s.next >= 0 && s.next !== s.committedToKafka) {
        const at = s.next
        await c.commit(p, at)
        s.committedToKafka = at
      }
    }
  }

  private async onBatch (b: PortBatch): Promise<void> {
    const p = b.partition
    const wal = this.handle.wal
    if (wal === null || this.stopping) throw new KafkaPortError('kafka', 'mirror stopping')
    if (p >= wal.partitions) {
      // The topic grew: the next session reopens an owned WAL with more partitions.
      if (this.handle.owned) throw new KafkaPortError('kafka', `topic ${this.topic} now has partition ${p}; reopening the WAL with more partitions`)
      throw new WalError('INVALID_ARGUMENT', `topic ${this.topic} now has partition ${p} but the WAL has ${wal.partitions} partitions: reopen it with more`, { partition: p })
    }
    let s = this.state.get(p)
    if (s === undefined) {
      s = newState(-1, b.highWatermark)
      this.state.set(p, s)
    }
    s.high = Math.max(s.high, b.highWatermark)
    if (s.recheck && b.reset === undefined && s.next >= 0) {
      // Assigned again (a rebalance) and sought back to s.next: the topic may have been deleted,
      // re-created and grown past it meanwhile (kafkajs rejoins its group when a fetch finds the
      // topic gone), and the fetch from s.next then succeeds. The same check as at start.
      s.recheck = false
      const replaced = (await this.checkLast(wal, [p], Infinity)).get(p)
      if (replaced !== undefined) {
        const expected = s.next
        const info = (await this.port.describe(this.topic)).find((x) => x.partition === p)
        const low = info?.low ?? 0
        this.offsetReset(p, s, expected, low, 'restarted', { low, high: info?.high ?? b.highWatermark }, replaced)
        // (onOffsetReset: 'earliest', 'dense') The consumer is at the old position: the next
        // session seeks it to the partition's earliest offset, which the reset put in s.next.
        s.resetOf = expected
        throw new KafkaPortError('kafka', `mirror of ${this.topic}: partition ${p} restarts from offset ${low} (the topic was re-created)`)
      }
    }
    if (b.reset !== undefined && s.next >= 0) {
      s.recheck = false
      // Kafka moved the consumer: records from s.next on were deleted before this mirror read them
      // (the batch starts later), or the partition restarted below s.next (it starts earlier).
      // Where Kafka moved it, not the first record: aborted records and markers between were not deleted.
      const at = b.reset.at ?? (b.messages.length > 0 ? b.messages[0].offset : b.nextOffset)
      // Moved back: restarted, even if the partition has grown past s.next again since (its high
      // watermark alone would call that a deletion, and the new records below s.next would be lost).
      const restarted = at < s.next || b.highWatermark < s.next
      this.offsetReset(p, s, s.next, at, restarted ? 'restarted' : 'deleted', { low: at, high: b.highWatermark })
    }
    const msgs = s.next < 0 ? b.messages : b.messages.filter((m) => m.offset >= s.next)
    if (msgs.length === 0 && b.nextOffset <= s.next) return
    // The checkpoint is stored in the same batch and counts toward maxBatchBytes: leave room for it
    // (runs added within this batch fit in the per-record overestimate of BATCH_OVERHEAD).
    /** Room for records beside the next checkpoint, sized with the largest `next`. */
    const room = (): number => {
      const state = s as PartitionState
      const json = this.mode === 'dense'
        ? denseCheckpoint(this.topic, p, Number.MAX_SAFE_INTEGER, state.runs).bytes()
        : Buffer.byteLength(JSON.stringify({ v: 1, topic: this.topic, partition: p, mode: this.mode, next: Number.MAX_SAFE_INTEGER } satisfies MirrorCheckpoint))
      return wal.options.maxBatchBytes - (10 + Buffer.byteLength(checkpointName(this.topic)) + json) - BATCH_OVERHEAD
    }
    let maxBatch = room()
    let chunk: RecordInput[] = []
    let chunkOffsets: number[] = []
    let chunkBytes = 0
    let records = 0
    let bytes = 0
    const flush = async (next: number): Promise<void> => {
      const state = s as PartitionState
      const name = checkpointName(this.topic)
      if (this.mode === 'preserve') {
        const cp: MirrorCheckpoint = { v: 1, topic: this.topic, partition: p, mode: this.mode, next }
        await wal.appendBatch(p, chunk, { checkpoint: { name, value: JSON.stringify(cp) }, offsets: chunkOffsets })
      } else {
        const { start, pending } = wal.offsets(p)
        const runs = state.runs
        runs.prune(start)
        // No explicit offsets, so other writers may append meanwhile. The log numbers a batch when
        // appendBatch is called, from `pending` (after whatever is still being committed): read in
        // the same synchronous step, with no await in between, it is exactly where the batch lands.
        // Runs are only extended or added after the last: what a batch changed is undone in O(1)
        // if it fails (a copy of every run per flush made gap-heavy topics slower).
        const mark = runs.mark()
        for (let i = 0; i < chunkOffsets.length; i++) runs.add(pending + i, chunkOffsets[i], 1)
        try {
          await wal.appendBatch(p, chunk, { checkpoint: { name, value: denseCheckpoint(this.topic, p, next, runs).json() } })
        } catch (err) {
          // A failed batch must not leave its runs for the next one to extend.
          runs.undo(mark)
          throw err
        }
      }
      state.next = next
      state.mode = this.mode
      // The checkpoint now names where this batch ended, not an offset a reset replaced.
      state.resetOf = -1
      if (chunk.length > 0) state.lastGuessed = false
      chunk = []
      chunkOffsets = []
      chunkBytes = 0
      maxBatch = room()
    }
    for (const m of msgs) {
      // A message already has the shape of a record, tombstones included (its extra offset is
      // ignored): no copy per record.
      const rec = m as RecordInput
      let size = (m.key?.length ?? 0) + (m.value?.length ?? 0)
      // 3 bytes per UTF-16 unit bounds a key's UTF-8 size without scanning it (this is only an estimate).
      for (const h of m.headers) size += 3 * h.key.length + (h.value?.length ?? 0)
      const est = size + BATCH_OVERHEAD + 8 * m.headers.length
      if (chunk.length > 0 && chunkBytes + est > maxBatch) await flush(chunkOffsets[chunkOffsets.length - 1] + 1)
      chunk.push(rec)
      chunkOffsets.push(m.offset)
      chunkBytes += est
      records++
      bytes += size
    }
    const last = msgs.length > 0 ? msgs[msgs.length - 1].offset + 1 : -1
    await flush(Math.max(b.nextOffset, last, s.next))
    s.records += records
    s.bytes += bytes
    this.progressed = true
    this.emit('batch', { partition: p, records, bytes, next: s.next, high: s.high } satisfies MirrorBatchEvent)
    if (this.caughtUp()) this.sessionEnd?.(null)
  }
}

/**
 * Starts mirroring `topic` into the WAL. Resolves once the mirror is consuming (or already
 * finished, with `stopAtEnd`); rejects with a WalError if it cannot start: Kafka unreachable within
 * `startTimeoutMs` (IO_ERROR), unknown topic (INVALID_ARGUMENT), failed authentication
 * (INVALID_OPTION); `details.kafka` says which. Before Kafka has answered, the WAL is not touched.
 */
export async function mirror (options: MirrorOptions): Promise<Mirror> {
  const m = new MirrorImpl(options)
  await Promise.race([m.whenStarted, m.done])
  return m
}
