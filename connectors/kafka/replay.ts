/**
 * replay(): WAL -> Kafka.
 *
 * Records go to the same partition number (`partitioner: 'same'`, the default) or to the partition
 * Kafka's murmur2 partitioner picks for the key (`'murmur2'`; records without a key go to
 * `walPartition % partitions`, deterministically). Replay starts at the group's committed cursor,
 * else at `from` (an offset, a timestamp, 'earliest' or 'latest').
 *
 * Delivery: one idempotent producer, acks = -1, in rounds: a round reads up to `maxBatchRecords`
 * records across the replayed partitions, sends them, waits for Kafka's acknowledgement, and only
 * then commits the WAL group cursor of each partition. So at most one round is ever unacknowledged
 * or uncommitted. Each produced record carries a provenance header (WAL partition and offset, see
 * provenance.ts) after its own headers.
 *
 * - Sole writer (`soleWriter: true`, the default): replay assumes it is the only writer of the
 *   target partitions. On every (re)start it reads the last `maxBatchRecords + 1` records of each
 *   target partition and skips every WAL record whose provenance shows it already landed (records of
 *   one WAL partition reach one target partition in order, so "landed" is "offset <= the highest
 *   provenance offset seen"). Nothing is sent twice, also after a crash between the acknowledgement
 *   and the cursor commit, or a send that failed after reaching the broker. In 'murmur2' mode this
 *   needs a `group` (the cursor bounds what can be in flight); in 'same' mode the last record of the
 *   target partition is enough, so it also holds without a group.
 * - Otherwise (other producers write the topic, or `soleWriter: false`): at least once. A restart
 *   resends at most the last round.
 */
import { EventEmitter } from 'node:events'
import type { Kafka } from 'kafkajs'
import { WalError, type WalRecord, type WriteAhead, type WriteAheadOptions } from '../../src/index.js'
import type { WalReadable } from '../../src/streams/readable.js'
import {
  backoffDelay, checkInt, checkOneOf, checkTopic, deferred, isRetriable, refuseUnknownOptions, resolvePort, settleWithin, sleep, toWalError, WalHandle, withDeadline,
  type ReconnectEvent, type ReconnectOptions
} from './common.js'
import { bool, kindOf, plainObject } from '../../src/options.js'
import type { KafkajsPortOptions } from './kafkajs-port.js'
import { murmur2Partition } from './murmur2.js'
import { KafkaPortError, type KafkaPort, type PartitionInfo, type PortProducer, type ProduceRecord } from './port.js'
import { provenanceHeader, provenanceOf } from './provenance.js'

/** Where replay starts when the group has no committed cursor (or there is no group). */
export type ReplayFrom = 'earliest' | 'latest' | number | { timestamp: number | Date } | Record<number, number>

export interface ReplayOptions {
  /** A WriteAhead, or a directory (opened, and closed at the end). */
  wal: WriteAhead | string
  walOptions?: WriteAheadOptions
  /** The target topic. */
  topic: string
  /** A kafkajs `Kafka` instance or any KafkaPort. */
  kafka: Kafka | KafkaPort
  /** WAL consumer group: replay starts at its committed cursor and commits it after each acknowledged round. */
  group?: string
  /** Start when the group has no cursor: 'earliest' (default), 'latest', an offset (all partitions), `{ [partition]: offset }`, or `{ timestamp }` (ms or Date). */
  from?: ReplayFrom
  /** WAL partitions to replay. Default: all. */
  partitions?: number[]
  /** `'same'` (default): WAL partition N -> topic partition N. `'murmur2'`: by key, as Kafka's default partitioner. */
  partitioner?: 'same' | 'murmur2'
  /** Add the provenance header. Default true (needed for soleWriter). */
  provenance?: boolean
  /** Replay is the only writer of the target partitions: read the target's tail on start and send no duplicates. Default true. */
  soleWriter?: boolean
  /** An id written into the provenance header (only records with the same source count as already sent). */
  source?: string
  /** Keep tailing the WAL for new records. Default false: stop at the end seen at start (`done` resolves). */
  live?: boolean
  /** Create the topic when it is missing (partitions default to the WAL's). Default false: a missing topic is an error. */
  createTopic?: boolean | { partitions?: number, replicationFactor?: number, configs?: Record<string, string> }
  /** Records per round (one send). Default 1000. */
  maxBatchRecords?: number
  /** Bytes per round. Default 512 KiB (stay below the broker's message.max.bytes). */
  maxBatchBytes?: number
  /** Fail (IO_ERROR) if Kafka cannot be reached within this time at start. Default 30000 ms. */
  startTimeoutMs?: number
  reconnect?: ReconnectOptions
  /** kafkajs producer settings (only when `kafka` is a kafkajs instance). */
  producer?: KafkajsPortOptions['producer']
  signal?: AbortSignal
}

/** Every option, so that one the interface lacks is refused (the compiler keeps the two equal). */
const REPLAY_OPTIONS = {
  wal: true, walOptions: true, topic: true, kafka: true, group: true, from: true, partitions: true, partitioner: true,
  provenance: true, soleWriter: true, source: true, live: true, createTopic: true, maxBatchRecords: true, maxBatchBytes: true,
  startTimeoutMs: true, reconnect: true, producer: true, signal: true
} as const satisfies Record<keyof ReplayOptions, true>

export interface ReplayPartitionStatus {
  partition: number
  /** Next WAL offset to send. */
  next: number
  /** Where this partition stops (non-live), else the WAL's current end. */
  end: number
  lag: number
  records: number
  bytes: number
  /** Offsets with no record (explicit-offset gaps) passed over. */
  gaps: number
  /** Records not sent because the target already had them (sole-writer dedup). */
  skipped: number
}

export interface ReplaySummary {
  topic: string
  records: number
  bytes: number
  gaps: number
  skipped: number
  reconnects: number
  durationMs: number
  partitions: ReplayPartitionStatus[]
}

export interface ReplayBatchEvent {
  records: number
  bytes: number
  skipped: number
  /** Per WAL partition touched by the round: records and bytes sent, next WAL offset. */
  partitions: Record<number, { records: number, bytes: number, next: number }>
}

interface RoundPartition { records: number, bytes: number, gaps: number, skipped: number, last: number }

/** One send's worth of messages, and what it moves per WAL partition once acknowledged. */
interface Round {
  msgs: ProduceRecord[]
  per: Map<number, RoundPartition>
  records: number
  bytes: number
  skipped: number
}

interface PState {
  pos: number
  end: number
  records: number
  bytes: number
  gaps: number
  skipped: number
}

export interface Replay extends EventEmitter {
  readonly topic: string
  readonly done: Promise<ReplaySummary>
  readonly wal: WriteAhead | null
  status (): ReplaySummary
  stop (): Promise<ReplaySummary>
}

const DEFAULT_BATCH_BYTES = 512 * 1024
const CREATE_TOPIC_OPTIONS = { partitions: true, replicationFactor: true, configs: true } as const

/** createTopic: true, or a spec whose every field is checked here, before anything is created. */
function checkCreateTopic (c: unknown): void {
  if (c === undefined || typeof c === 'boolean') return
  if (!plainObject(c)) {
    throw new WalError('INVALID_OPTION', `option createTopic: must be a boolean or { partitions?, replicationFactor?, configs? }, got ${kindOf(c)}`, { option: 'createTopic' })
  }
  for (const k of Object.keys(c as object)) {
    if (!Object.hasOwn(CREATE_TOPIC_OPTIONS, k)) throw new WalError('INVALID_OPTION', `option createTopic.${k}: unknown; createTopic takes { partitions?, replicationFactor?, configs? }`, { option: `createTopic.${k}` })
  }
  const spec = c as { partitions?: unknown, replicationFactor?: unknown, configs?: unknown }
  // checkInt takes Infinity (for limits that may be off), which no topic has: kafkajs would be
  // asked for it only after the WAL was opened and Kafka reached, and fail without our code.
  for (const k of ['partitions', 'replicationFactor'] as const) {
    if (checkInt(`createTopic.${k}`, spec[k], 1, 1) === Infinity) throw new WalError('INVALID_OPTION', `option createTopic.${k}: must be a finite integer >= 1, got Infinity`, { option: `createTopic.${k}` })
  }
  const configs = spec.configs
  if (configs !== undefined && (!plainObject(configs) || Object.values(configs as object).some((v) => typeof v !== 'string'))) {
    throw new WalError('INVALID_OPTION', 'option createTopic.configs: must be an object of topic configs with string values, e.g. { \'retention.ms\': \'-1\' }', { option: 'createTopic.configs' })
  }
}

/** Records the start-up pass-over reads between turns of the event loop (~10-50 ms of reading). */
const PASS_OVER_TURN = 65_536

/** Checks `from` as replay() is called, before anything connects (startOffset reads it later). */
function checkFrom (from: unknown): void {
  if (from === undefined || from === 'earliest' || from === 'latest') return
  const bad = (why: string): WalError => new WalError('INVALID_OPTION', `option from: ${why}`, { option: 'from' })
  const offset = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
  if (typeof from === 'number') {
    if (!offset(from)) throw bad(`must be a non-negative offset, got ${from}`)
    return
  }
  if (from instanceof Date) throw bad(`a Date is given as { timestamp: date }, got ${String(from)}`)
  if (from !== null && typeof from === 'object' && !Array.isArray(from)) {
    // Anything but a plain object (a Map, a Date subclass, a class instance) would pass the
    // partition loop below with no entries, and replay from the start without a word.
    if (!plainObject(from)) throw bad(`must be a plain object { [partition]: offset } or { timestamp }, got ${kindOf(from)}`)
    if ('timestamp' in from) {
      const ts = (from as { timestamp: unknown }).timestamp
      const ms = ts instanceof Date ? ts.getTime() : ts
      if (typeof ms !== 'number' || !Number.isFinite(ms)) throw bad(`{ timestamp } must be milliseconds or a valid Date, got ${String(ts)}`)
      return
    }
    for (const [k, v] of Object.entries(from)) {
      if (!/^(0|[1-9]\d{0,8})$/.test(k)) throw bad(`${JSON.stringify(k)} is not a partition number`)
      if (!offset(v)) throw bad(`from[${k}] must be a non-negative offset, got ${String(v)}`)
    }
    return
  }
  throw bad(`must be 'earliest', 'latest', an offset, { [partition]: offset } or { timestamp }, got ${JSON.stringify(from)}`)
}

function recordSize (r: WalRecord): number {
  let n = (r.value?.length ?? 0) + (r.key?.length ?? 0)
  for (const h of r.headers) n += Buffer.byteLength(h.key) + (h.value?.length ?? 0)
  return n
}

class ReplayImpl extends EventEmitter implements Replay {
  readonly topic: string
  readonly done: Promise<ReplaySummary>
  private readonly port: KafkaPort
  private readonly ownsPort: boolean
  private readonly handle: WalHandle
  private readonly partitioner: 'same' | 'murmur2'
  private readonly provenance: boolean
  /** The session's producer builds the provenance header from ProduceRecord.provenance. */
  private portAddsProvenance = false
  private readonly soleWriter: boolean
  private readonly maxRecords: number
  private readonly maxBytes: number
  private readonly startTimeoutMs: number
  private readonly stopCtl = new AbortController()
  private readonly started = deferred<void>()
  private readonly state = new Map<number, PState>()
  private readonly t0 = Date.now()
  private reconnects = 0
  private everStarted = false
  private progressed = false

  constructor (private readonly o: ReplayOptions) {
    super()
    if (o === null || typeof o !== 'object') throw new WalError('INVALID_ARGUMENT', 'replay(options): options must be an object')
    refuseUnknownOptions('replay', o, REPLAY_OPTIONS)
    this.topic = checkTopic(o.topic)
    this.partitioner = checkOneOf('partitioner', o.partitioner, ['same', 'murmur2'] as const, 'same')
    this.provenance = bool('provenance', o.provenance, true)
    // Sole-writer dedup finds what landed by the provenance header: without one it cannot.
    if (o.soleWriter === true && !this.provenance) {
      throw new WalError('INVALID_OPTION', 'option soleWriter: true needs provenance (the header it finds landed records by); pass provenance: true, or soleWriter: false for at least once', { option: 'soleWriter' })
    }
    this.soleWriter = bool('soleWriter', o.soleWriter, true) && this.provenance
    bool('live', o.live, false)
    checkCreateTopic(o.createTopic)
    this.maxRecords = checkInt('maxBatchRecords', o.maxBatchRecords, 1, 1000)
    this.maxBytes = checkInt('maxBatchBytes', o.maxBatchBytes, 1024, DEFAULT_BATCH_BYTES)
    this.startTimeoutMs = checkInt('startTimeoutMs', o.startTimeoutMs, 1, 30_000)
    checkInt('reconnect.maxAttempts', o.reconnect?.maxAttempts, 0, Infinity)
    if (o.group !== undefined && (typeof o.group !== 'string' || o.group.length === 0)) throw new WalError('INVALID_OPTION', 'option group: must be a non-empty string', { option: 'group' })
    checkFrom(o.from)
    if (o.source !== undefined && typeof o.source !== 'string') throw new WalError('INVALID_OPTION', 'option source: must be a string', { option: 'source' })
    if (o.partitions !== undefined && (!Array.isArray(o.partitions) || o.partitions.some((p) => !Number.isSafeInteger(p) || p < 0))) {
      throw new WalError('INVALID_OPTION', 'option partitions: must be an array of partition numbers', { option: 'partitions' })
    }
    this.handle = new WalHandle(o.wal, o.walOptions, true)
    const { port, owned } = resolvePort(o.kafka, { producer: o.producer })
    this.port = port
    this.ownsPort = owned
    if (o.signal !== undefined) {
      if (o.signal.aborted) this.stopCtl.abort()
      else o.signal.addEventListener('abort', () => { void this.stop() }, { once: true })
    }
    this.done = this.run()
    this.done.catch(() => {})
  }

  get wal (): WriteAhead | null { return this.handle.wal }
  get whenStarted (): Promise<void> { return this.started.promise }
  private get stopping (): boolean { return this.stopCtl.signal.aborted }

  status (): ReplaySummary {
    const wal = this.handle.wal
    const partitions = [...this.state.entries()].sort((a, b) => a[0] - b[0]).map(([partition, s]) => {
      let end = s.end
      if (!Number.isFinite(end)) end = wal !== null ? wal.offsets(partition).end : s.pos
      return { partition, next: s.pos, end, lag: Math.max(0, end - s.pos), records: s.records, bytes: s.bytes, gaps: s.gaps, skipped: s.skipped }
    })
    const sum = (k: 'records' | 'bytes' | 'gaps' | 'skipped'): number => partitions.reduce((n, p) => n + p[k], 0)
    return {
      topic: this.topic,
      records: sum('records'),
      bytes: sum('bytes'),
      gaps: sum('gaps'),
      skipped: sum('skipped'),
      reconnects: this.reconnects,
      durationMs: Date.now() - this.t0,
      partitions
    }
  }

  async stop (): Promise<ReplaySummary> {
    this.stopCtl.abort()
    return this.done.catch(() => this.status())
  }

  private async run (): Promise<ReplaySummary> {
    const deadline = Date.now() + this.startTimeoutMs
    let attempt = 0
    let lastError: Error | null = null
    try {
      while (!this.stopping) {
        let err: Error | null
        this.progressed = false
        try {
          err = await this.session(this.everStarted ? Infinity : deadline - Date.now())
        } catch (e) {
          err = e as Error
        }
        if (err === null || this.stopping) break
        if (!isRetriable(err)) throw toWalError(err, `replay to ${this.topic}`, { topic: this.topic })
        if (!(err instanceof KafkaPortError && err.message.includes('no answer within'))) lastError = err
        if (!this.everStarted && Date.now() >= deadline) {
          throw toWalError(lastError ?? err, `replay to ${this.topic}: could not start within ${this.startTimeoutMs} ms`, { topic: this.topic })
        }
        attempt = this.progressed ? 1 : attempt + 1
        const max = this.o.reconnect?.maxAttempts ?? Infinity
        if (attempt > max) throw toWalError(err, `replay to ${this.topic}: gave up after ${max} reconnect attempts`, { topic: this.topic })
        let delayMs = backoffDelay(attempt, this.o.reconnect ?? {})
        if (!this.everStarted) delayMs = Math.min(delayMs, Math.max(0, deadline - Date.now()))
        this.reconnects++
        this.emit('reconnect', { attempt, delayMs, error: err } satisfies ReconnectEvent)
        await sleep(delayMs, this.stopCtl.signal)
      }
      return this.status()
    } finally {
      if (this.ownsPort) await settleWithin(this.port.close(), 10_000)
      await this.handle.close()
    }
  }

  private async describeOrCreate (budgetMs: number): Promise<PartitionInfo[]> {
    try {
      return await withDeadline(this.port.describe(this.topic), budgetMs, `replay to ${this.topic}: reaching Kafka`)
    } catch (err) {
      const c = this.o.createTopic
      if (!(err instanceof KafkaPortError) || err.reason !== 'unknown-topic' || c === undefined || c === false) throw err
      if (this.port.createTopic === undefined) throw new KafkaPortError('config', 'createTopic: this KafkaPort cannot create topics', { retriable: false })
      const wal = await this.handle.ensure(1, `replay to ${this.topic}`)
      const spec = typeof c === 'object' ? c : {}
      // Checked before creating: a topic created too small would stay behind, and every later
      // run would find it and fail the same way.
      const needed = this.partitioner === 'same' ? Math.max(0, ...(this.o.partitions ?? [wal.partitions - 1])) + 1 : 1
      if (spec.partitions !== undefined && spec.partitions < needed) {
        throw new WalError('INVALID_OPTION', `option createTopic.partitions: ${spec.partitions} is too few for partitioner 'same', which sends WAL partition ${needed - 1} to topic partition ${needed - 1} (create it with at least ${needed}, or use partitioner: 'murmur2')`, { option: 'createTopic.partitions', partitions: needed })
      }
      await withDeadline(this.port.createTopic(this.topic, { partitions: spec.partitions ?? wal.partitions, replicationFactor: spec.replicationFactor, configs: spec.configs }), budgetMs, `replay: creating ${this.topic}`)
      return await withDeadline(this.port.describe(this.topic), budgetMs, `replay to ${this.topic}: reaching Kafka`)
    }
  }

  private startOffset (wal: WriteAhead, p: number): number {
    const group = this.o.group
    if (group !== undefined) {
      const c = wal.group(group).committed(p)
      if (c !== null) return c
    }
    const from = this.o.from ?? 'earliest'
    const { start, end } = wal.offsets(p)
    if (from === 'earliest') return start
    if (from === 'latest') return end
    if (typeof from === 'number') {
      if (!Number.isSafeInteger(from) || from < 0) throw new WalError('INVALID_OPTION', `option from: must be a non-negative offset, got ${from}`, { option: 'from' })
      return from
    }
    if (from !== null && typeof from === 'object' && 'timestamp' in from) {
      // The readable resolves a timestamp through the time index; its start position is `delivered`.
      const probe = wal.readable(p, { from: { timestamp: from.timestamp as number } })
      const at = probe.delivered
      probe.destroy()
      return at
    }
    if (from !== null && typeof from === 'object') {
      const v = (from as Record<number, number>)[p]
      if (v === undefined) return start
      if (!Number.isSafeInteger(v) || v < 0) throw new WalError('INVALID_OPTION', `option from[${p}]: must be a non-negative offset`, { option: 'from' })
      return v
    }
    throw new WalError('INVALID_OPTION', `option from: must be 'earliest', 'latest', an offset, { [partition]: offset } or { timestamp }, got ${JSON.stringify(from)}`, { option: 'from' })
  }

  private target (rec: WalRecord, p: number, n: number): number {
    if (this.partitioner === 'same') return p
    return rec.key !== null ? murmur2Partition(rec.key, n) : p % n
  }

  /** Highest WAL offset of each WAL partition already in each target partition: landed[p][q]. */
  private async landed (info: PartitionInfo[], budgetMs: number): Promise<Map<number, Map<number, number>>> {
    const out = new Map<number, Map<number, number>>()
    if (!this.soleWriter) return out
    const want = this.o.source ?? null
    const qs = this.partitioner === 'same' ? [...this.state.keys()].filter((p) => p < info.length) : info.map((b) => b.partition)
    await Promise.all(qs.map(async (q) => {
      const tail = await withDeadline(this.port.tail(this.topic, q, this.maxRecords + 1), budgetMs, `replay to ${this.topic}: reading the tail of partition ${q}`)
      for (const m of tail) {
        const prov = provenanceOf(m.headers)
        if (prov === null || prov.source !== want) continue
        let row = out.get(prov.partition)
        if (row === undefined) { row = new Map(); out.set(prov.partition, row) }
        row.set(q, Math.max(row.get(q) ?? -1, prov.offset))
      }
    }))
    return out
  }

  /**
   * Moves partition p to `to`, past records the target's tail shows already landed ('same'
   * partitioner): they count as skipped, as records found there one by one do, and offsets without
   * a record as gaps. The group cursor moves with them: those records are in Kafka, and a cursor
   * left behind would send them again once the target's tail no longer shows them (retention,
   * deleteRecords), and would hold back the lag and `keepUnconsumed` retention meanwhile.
   */
  private async passOver (wal: WriteAhead, p: number, s: PState, to: number): Promise<void> {
    const { start, end } = wal.offsets(p)
    const from = Math.max(s.pos, start)
    const upTo = Math.min(to, end)
    let records = 0
    let turn = PASS_OVER_TURN
    if (upTo > from) {
      for await (const batch of wal.iterateBatches(p, { from, to: upTo })) {
        records += batch.length
        // The iterator settles in microtasks: over a long stretch, nothing else would run, a
        // SIGTERM's stop() included. Give the event loop a turn now and then, and stop if asked.
        if (records >= turn) {
          turn = records + PASS_OVER_TURN
          await new Promise((resolve) => setImmediate(resolve))
          if (this.stopping) return
        }
      }
    }
    s.skipped += records
    s.gaps += Math.max(0, upTo - from) - records
    s.pos = to
    const group = this.o.group
    if (group !== undefined && upTo > (wal.group(group).committed(p) ?? -1)) await wal.group(group).commit(p, upTo)
  }

  private async session (budgetMs: number): Promise<Error | null> {
    if (this.stopping) return null
    const info = await this.describeOrCreate(budgetMs)
    const n = info.length
    const wal = await this.handle.ensure(1, `replay to ${this.topic}`)
    const ps = this.o.partitions ?? Array.from({ length: wal.partitions }, (_, i) => i)
    for (const p of ps) {
      if (p >= wal.partitions) throw new WalError('INVALID_OPTION', `option partitions: the WAL has no partition ${p} (it has ${wal.partitions})`, { option: 'partitions', partition: p })
    }
    if (this.partitioner === 'same' && ps.length > 0 && Math.max(...ps) >= n) {
      throw new WalError('INVALID_ARGUMENT', `topic ${this.topic} has ${n} partitions; partitioner 'same' needs ${Math.max(...ps) + 1} (create it with more, or use partitioner: 'murmur2')`, { partitions: n })
    }
    for (const p of ps) {
      if (this.state.has(p)) continue
      const pos = this.startOffset(wal, p)
      this.state.set(p, { pos, end: this.o.live === true ? Infinity : wal.offsets(p).end, records: 0, bytes: 0, gaps: 0, skipped: 0 })
    }
    const landed = await this.landed(info, budgetMs)
    if (this.partitioner === 'same') {
      for (const [p, s] of this.state) {
        const m = landed.get(p)?.get(p)
        // Everything up to m reached the target in order: continue after it.
        if (m !== undefined && m + 1 > s.pos) await this.passOver(wal, p, s, Math.min(m + 1, Math.max(s.end, s.pos)))
        if (this.stopping) return null
      }
    }
    const producer = await withDeadline(this.port.producer(), budgetMs, `replay to ${this.topic}: connecting the producer`)
    this.portAddsProvenance = producer.addsProvenance === true
    if (this.partitioner === 'murmur2' && landed.size > 0) {
      // Records in doubt (up to the highest offset any target shows as landed) go first, in one
      // round. Later rounds take each partition only at its share, and other partitions' traffic
      // could push these records out of the target tails before a second failure: they would then
      // look unsent and be sent again.
      const first: WalRecord[] = []
      for (const [p, s] of this.state) {
        const row = landed.get(p)
        if (row === undefined) continue
        const upTo = Math.min(Math.max(...row.values()) + 1, s.end)
        if (upTo <= s.pos) continue
        for await (const rec of wal.iterate(p, { from: s.pos, to: upTo })) first.push(rec)
      }
      if (first.length > 0) await this.send(producer, first, landed, n)
    }
    this.everStarted = true
    this.started.resolve()
    this.emit('connected')
    const readers = new Map<number, WalReadable>()
    const ended = new Set<number>()
    let wake = deferred<void>()
    let woken = false
    const poke = (): void => { woken = true; wake.resolve() }
    let readError: Error | null = null
    const onAbort = (): void => poke()
    this.stopCtl.signal.addEventListener('abort', onAbort)
    let inFlight: Promise<void> | null = null
    try {
      for (const [p, s] of this.state) {
        if (s.pos >= s.end) { ended.add(p); continue }
        const rs = wal.readable(p, { from: s.pos, to: Number.isFinite(s.end) ? s.end : undefined, live: this.o.live === true })
        rs.on('readable', poke)
        rs.on('end', () => { ended.add(p); poke() })
        rs.on('error', (err: Error) => { readError = err; poke() })
        readers.set(p, rs)
      }
      const order = [...readers.keys()]
      let turn = 0
      const taken = new Map<number, number>()
      // One round in flight (kafkajs sends one request at a time anyway) while the next is read
      // from the WAL and turned into messages: that work then overlaps the broker's round trip
      // and the cursor commit instead of following them. Rounds are still sent and committed in
      // order, and a cursor still moves only after its round is acknowledged; a prepared round
      // that is never sent (stop, failure) is read again by the next session from the cursor.
      const settle = async (): Promise<void> => {
        const f = inFlight
        inFlight = null
        if (f !== null) await f
      }
      while (!this.stopping) {
        if (readError !== null) throw readError
        const batch = this.collect(readers, order, turn++)
        if (batch.length === 0) {
          if (inFlight !== null) { await settle(); continue }
          if (ended.size >= this.state.size) return null
          if (!woken) await wake.promise
          wake = deferred<void>()
          woken = false
          continue
        }
        const round = this.prepare(batch, landed, n, taken)
        await settle()
        if (this.stopping) break
        inFlight = this.deliver(producer, round)
        inFlight.catch(() => {}) // awaited by settle(); this only keeps it from counting as unhandled
      }
      await settle()
      return null
    } catch (err) {
      if (err instanceof WalError) throw err
      return err as Error
    } finally {
      // Never close the producer under a round still being sent.
      if (inFlight !== null) await (inFlight as Promise<void>).catch(() => {})
      this.stopCtl.signal.removeEventListener('abort', onAbort)
      for (const rs of readers.values()) rs.destroy()
      await settleWithin(producer.close(), 10_000)
    }
  }

  /** Up to maxBatchRecords / maxBatchBytes of buffered records, taking turns across partitions. */
  private collect (readers: Map<number, WalReadable>, order: number[], turn: number): WalRecord[] {
    const out: WalRecord[] = []
    let bytes = 0
    const share = Math.max(1, Math.ceil(this.maxRecords / Math.max(1, order.length)))
    for (let pass = 0; pass < 2 && out.length < this.maxRecords && bytes < this.maxBytes; pass++) {
      for (let i = 0; i < order.length && out.length < this.maxRecords && bytes < this.maxBytes; i++) {
        const p = order[(i + turn) % order.length]
        const rs = readers.get(p) as WalReadable
        let taken = 0
        while ((pass === 1 || taken < share) && out.length < this.maxRecords && bytes < this.maxBytes) {
          const rec = rs.read() as WalRecord | null
          if (rec === null) break
          out.push(rec)
          bytes += recordSize(rec) + 64
          taken++
        }
      }
    }
    return out
  }

  private async send (producer: PortProducer, batch: WalRecord[], landed: Map<number, Map<number, number>>, n: number): Promise<void> {
    await this.deliver(producer, this.prepare(batch, landed, n, new Map()))
  }

  /**
   * Turns WAL records into messages for one round. `taken` holds the last offset already taken
   * from each partition by rounds prepared earlier (not yet acknowledged), to count gaps.
   */
  private prepare (batch: WalRecord[], landed: Map<number, Map<number, number>>, n: number, taken: Map<number, number>): Round {
    const msgs: ProduceRecord[] = []
    let records = 0
    let bytes = 0
    let skipped = 0
    const per = new Map<number, RoundPartition>()
    const source = this.o.source ?? null
    // The provenance header is built by the port while it encodes, or put into the headers here.
    const byPort = this.provenance && this.portAddsProvenance
    const here = this.provenance && !this.portAddsProvenance
    for (const rec of batch) {
      const p = rec.partition
      let acc = per.get(p)
      if (acc === undefined) {
        acc = { records: 0, bytes: 0, gaps: 0, skipped: 0, last: taken.get(p) ?? (this.state.get(p) as PState).pos - 1 }
        per.set(p, acc)
      }
      if (rec.offset > acc.last + 1) acc.gaps += rec.offset - acc.last - 1
      acc.last = rec.offset
      const q = this.target(rec, p, n)
      const seen = landed.get(p)?.get(q)
      if (seen !== undefined && rec.offset <= seen) { acc.skipped++; skipped++; continue }
      msgs.push({
        partition: q,
        key: rec.key,
        value: rec.value,
        headers: here ? [...rec.headers, provenanceHeader(p, rec.offset, source)] : rec.headers,
        timestamp: rec.timestamp,
        provenance: byPort ? { partition: p, offset: rec.offset, source } : undefined
      })
      const size = recordSize(rec)
      acc.records++
      acc.bytes += size
      records++
      bytes += size
    }
    for (const [p, acc] of per) taken.set(p, acc.last)
    return { msgs, per, records, bytes, skipped }
  }

  /** Sends a round, waits for Kafka's acknowledgement, then commits the WAL cursors it covers. */
  private async deliver (producer: PortProducer, round: Round): Promise<void> {
    const { msgs, per, records, bytes, skipped } = round
    const touched: ReplayBatchEvent['partitions'] = {}
    if (msgs.length > 0) await producer.send(this.topic, msgs)
    const wal = this.handle.wal as WriteAhead
    const group = this.o.group
    await Promise.all([...per.entries()].map(async ([p, acc]) => {
      if (group !== undefined) await wal.group(group).commit(p, acc.last + 1)
      const s = this.state.get(p) as PState
      s.pos = acc.last + 1
      s.records += acc.records
      s.bytes += acc.bytes
      s.gaps += acc.gaps
      s.skipped += acc.skipped
      touched[p] = { records: acc.records, bytes: acc.bytes, next: s.pos }
    }))
    this.progressed = true
    this.emit('batch', { records, bytes, skipped, partitions: touched } satisfies ReplayBatchEvent)
  }
}

/**
 * Starts replaying the WAL into `topic`. Resolves once the producer is connected (the replay
 * runs on; await `done` for the summary); rejects with a WalError if it cannot start: Kafka
 * unreachable within `startTimeoutMs` (IO_ERROR), missing topic without `createTopic`
 * (INVALID_ARGUMENT), failed authentication (INVALID_OPTION); `details.kafka` says which.
 */
export async function replay (options: ReplayOptions): Promise<Replay> {
  const r = new ReplayImpl(options)
  await Promise.race([r.whenStarted, r.done])
  return r
}
