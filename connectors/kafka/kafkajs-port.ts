/**
 * The port on kafkajs 2.2.x.
 *
 * kafkajs represents headers as an object (`{ key: value | value[] }`), which loses the order of
 * interleaved duplicates (`a, b, a`), reorders integer-like keys, and cannot send a null header
 * value. Kafka records keep all of that, and so must a byte-for-byte mirror. This adapter therefore
 * relies on three kafkajs internals, all checked by test/kafka-port.test.js against the installed
 * kafkajs:
 *  1. decoding: `Decoder.prototype.readVarIntArray` is wrapped so that the header list of each decoded
 *     record stays attached (under the symbol `Symbol.for('writeahead.kafka.orderedHeaders')`)
 *     to kafkajs's header object (see HeaderFold). Nothing else changes for other kafkajs users in
 *     the process.
 *  2. encoding: headers are handed to kafkajs's record encoder as an array-valued object whose
 *     `map` yields the exact ordered `{ key, value }` list (null values included); the port also
 *     replaces that encoder with one writing the same bytes for less (kafkajs-encoder.ts).
 *  3. `tail()` and `readAt()` fetch through kafkajs's cluster object (no consumer group, so nothing
 *     is left behind on the brokers).
 *  4. read_committed: kafkajs's filter of aborted transactions (consumer/filterAbortedMessages.js)
 *     takes the broker's aborted-transaction list to be sorted by first offset (the broker sends it
 *     in the order the transactions were aborted) and starts at most one aborted transaction per
 *     record, so records of an aborted transaction reach the caller when transactions of two
 *     producers overlap, or when a fetch starts inside them. `Broker.prototype.fetch` is wrapped to
 *     keep each partition's list beside its records, and the `messages` kafkajs's `Batch` builds
 *     are filtered again from its records by the Java client's rule (committedRecords below). This
 *     applies to every kafkajs consumer in the process: their read_committed batches lose the
 *     aborted records kafkajs let through, and nothing else.
 */
import { createRequire } from 'node:module'
import { setTimeout as delay } from 'node:timers/promises'
import path from 'node:path'
import kafkajs from 'kafkajs'
import type { Admin, Consumer, EachBatchPayload, Kafka, Producer, RetryOptions } from 'kafkajs'
import type { WalHeader } from '../../src/index.js'
import {
  KafkaPortError, type Consumption, type ConsumeOptions, type CreateTopicOptions, type KafkaPort, type PartitionInfo,
  type PortBatch, type PortMessage, type PortProducer, type ProduceRecord
} from './port.js'
import { kafkajsHeaders, patchKafkajsEncoders } from './kafkajs-encoder.js'
import { headerKey } from '../../src/format/header-key.js'

const { Partitioners } = kafkajs
const require = createRequire(import.meta.url)

/** Where the decoder patch leaves each record's ordered header list. */
export const ORDERED_HEADERS = Symbol.for('writeahead.kafka.orderedHeaders')
const PATCHED = Symbol.for('writeahead.kafka.decoderPatched')

/** Consumer settings passed to kafkajs (see kafkajs's ConsumerConfig). */
export interface KafkajsConsumerOptions {
  sessionTimeout?: number
  rebalanceTimeout?: number
  heartbeatInterval?: number
  maxWaitTimeInMs?: number
  maxBytesPerPartition?: number
  maxBytes?: number
  /** Partitions processed in parallel. Default: up to 8. */
  partitionsConsumedConcurrently?: number
  retry?: RetryOptions
}

export interface KafkajsPortOptions {
  consumer?: KafkajsConsumerOptions
  producer?: {
    /** kafkajs CompressionTypes value. Default none. */
    compression?: number
    /** Producer request timeout (ms) for acks. Default 30000. */
    timeout?: number
    retry?: RetryOptions
  }
}

// ---------------------------------------------------------------------------
// Header fidelity

type Reader = (decoder: unknown) => unknown

/**
 * What the patched decoder returns for a record's header list. kafkajs's record decoder only folds
 * it into its object form with `reduce(fold, {})`, and this reduce builds that same object itself
 * and leaves the plain ordered list on it, under a symbol (invisible to Object.keys, for...in and
 * JSON). kafkajs's own fold spreads the object once per header: a tenth of a mirror's time went
 * there. test/kafka-port.test.js checks the result against kafkajs's fold, header for header.
 * A class around the list, not Object.defineProperty on each decoded array, which made kafkajs's
 * record decoding about 8% slower; the list itself stays a plain array for whoever reads it.
 */
class HeaderFold extends Array<unknown> {
  constructor (private readonly list: WalHeader[]) { super() }

  // `any`: Array's reduce has overloads that a single override cannot restate.
  override reduce (fn: (...a: any[]) => any, ...init: any[]): any {
    const list = this.list
    if (init.length === 0) return (Array.prototype.reduce as (fn: (...a: any[]) => any) => unknown).call(list, fn)
    let acc = init[0]
    if (isEmptyObject(acc)) acc = foldHeaders(list)
    else for (let i = 0; i < list.length; i++) acc = fn(acc, list[i], i, list)
    if (acc !== null && typeof acc === 'object') acc[ORDERED_HEADERS] = list
    return acc
  }
}

function isEmptyObject (x: unknown): x is Record<string, unknown> {
  if (x === null || typeof x !== 'object' || Object.getPrototypeOf(x) !== Object.prototype) return false
  for (const _ in x) return false
  return true
}

/**
 * kafkajs 2.2's header object, built by assignment: a key's first value as is, duplicates as an
 * array in order. Every quirk of its fold is kept: the lookup sees inherited properties (a header
 * named `toString` becomes [Object.prototype.toString, value], `__proto__` an own property).
 */
function foldHeaders (list: WalHeader[]): Record<string, unknown> {
  const obj: Record<string, unknown> = {}
  for (let i = 0; i < list.length; i++) {
    const { key, value } = list[i]
    const cur = obj[key]
    const next = cur === undefined ? value : Array.isArray(cur) ? cur.concat([value]) : [cur, value]
    // An inherited name is defined, as the spread did: assigning `__proto__` would set the
    // prototype, and assigning over a frozen Object.prototype's property would throw.
    if (cur !== undefined && !Object.hasOwn(obj, key)) Object.defineProperty(obj, key, { value: next, writable: true, enumerable: true, configurable: true })
    else obj[key] = next
  }
  return obj
}

/** The parts of kafkajs's Decoder that the patch uses. */
interface KafkajsDecoder { buffer: Buffer, offset: number, readVarInt: () => number, readVarIntBytes: () => Buffer | null }

/**
 * kafkajs's header reader (key: varint-length string, value: varint-length bytes), with the key
 * from the cache of short keys (src/format/header-key.ts): the same string for every record, which
 * also keeps foldHeaders' lookups by key fast, where a fresh string per record had to be hashed.
 */
function readHeader (d: KafkajsDecoder): WalHeader {
  const len = d.readVarInt()
  let key: string | null = null
  if (len !== -1) {
    key = headerKey(d.buffer, d.offset, len)
    d.offset += len
  }
  return { key: key as string, value: d.readVarIntBytes() }
}

/** Patches every kafkajs copy loaded in this process (and ours). Idempotent. */
export function patchKafkajsDecoders (): number {
  const files = new Set<string>()
  try { files.add(require.resolve('kafkajs/src/protocol/decoder.js')) } catch {}
  const suffix = path.join('kafkajs', 'src', 'protocol', 'decoder.js')
  for (const f of Object.keys(require.cache)) if (f.endsWith(suffix)) files.add(f)
  let patched = 0
  for (const file of files) {
    const Decoder = require(file) as { prototype: Record<string | symbol, unknown> }
    if (Decoder.prototype[PATCHED] === true) { patched++; continue }
    const headerReader = require(path.join(path.dirname(file), 'recordBatch', 'header', 'v0', 'decoder.js')) as Reader
    const original = Decoder.prototype.readVarIntArray as (this: KafkajsDecoder, reader: Reader) => unknown[]
    if (typeof original !== 'function' || typeof Decoder.prototype.readVarInt !== 'function' || typeof Decoder.prototype.readVarIntBytes !== 'function') continue
    Decoder.prototype.readVarIntArray = function (this: KafkajsDecoder, reader: Reader): unknown[] {
      if (reader !== headerReader) return original.call(this, reader)
      // kafkajs's own loop into a plain list, handed to kafkajs inside a HeaderFold.
      const length = this.readVarInt()
      if (length <= 0) return []
      const list = new Array<WalHeader>(length)
      for (let i = 0; i < length; i++) list[i] = readHeader(this)
      return new HeaderFold(list)
    }
    Object.defineProperty(Decoder.prototype, PATCHED, { value: true })
    patched++
  }
  return patched
}

type KafkajsHeaders = Record<string, unknown> | undefined

/** The ordered headers of a record decoded by kafkajs (falls back to the lossy object form). */
export function orderedHeadersOf (headers: KafkajsHeaders): { headers: WalHeader[], exact: boolean } {
  if (headers === undefined || headers === null) return { headers: [], exact: true }
  const ordered = (headers as Record<symbol, WalHeader[] | undefined>)[ORDERED_HEADERS]
  if (ordered !== undefined) return { headers: ordered, exact: true }
  const out: WalHeader[] = []
  for (const key of Object.keys(headers)) {
    const v = headers[key]
    const values = Array.isArray(v) ? v : [v]
    for (const x of values) out.push({ key, value: x === null || x === undefined ? null : Buffer.isBuffer(x) ? x : Buffer.from(String(x)) })
  }
  // Exact when nothing could have been reordered: no duplicates and no integer-like keys.
  const exact = out.length === Object.keys(headers).length && !Object.keys(headers).some((k) => /^(0|[1-9]\d*)$/.test(k))
  return { headers: out, exact }
}

// ---------------------------------------------------------------------------
// read_committed

/** Where the wrapped fetch leaves a partition's aborted transactions: on its (decoded) record list. */
const ABORTED_TRANSACTIONS = Symbol.for('writeahead.kafka.abortedTransactions')
const ABORT_FILTER_PATCHED = Symbol.for('writeahead.kafka.abortFilterPatched')

/** What the filter reads of a record kafkajs decoded. */
export interface KafkajsFetchedRecord {
  offset: string
  key: Buffer | null
  isControlRecord?: boolean
  batchContext?: { producerId: string, inTransaction: boolean }
}

/** An entry of a fetch response's aborted-transaction list. */
export interface AbortedTransaction { producerId: string, firstOffset: string }

/** A control record's key is version (int16) then type (int16): type 0 is ABORT, 1 COMMIT. */
function isAbortMarker (key: Buffer | null): boolean {
  return key !== null && key.length >= 4 && key.readInt16BE(0) >= 0 && key.readInt16BE(2) === 0
}

/**
 * The committed data records of one fetch, by the Java client's rule (Fetcher / CompletedFetch):
 * the aborted transactions, ordered by first offset, each become active for their producer once a
 * record at or past their first offset is reached (all of them, not one per record); a
 * transactional record of an active producer is dropped; that producer's abort marker (a control
 * record) ends its aborted range. Control records are dropped too.
 */
export function committedRecords<M extends KafkajsFetchedRecord> (records: readonly M[], aborted: readonly AbortedTransaction[] | undefined): M[] {
  if (aborted === undefined || aborted.length === 0) return records.filter((m) => m.isControlRecord !== true)
  const pending = aborted.map((a) => ({ producerId: String(a.producerId), first: Number(a.firstOffset) })).sort((a, b) => a.first - b.first)
  const active = new Set<string>()
  let k = 0
  const out: M[] = []
  for (const m of records) {
    const offset = Number(m.offset)
    while (k < pending.length && pending[k].first <= offset) active.add(pending[k++].producerId)
    const ctx = m.batchContext
    if (m.isControlRecord === true) {
      if (ctx !== undefined && isAbortMarker(m.key)) active.delete(String(ctx.producerId))
      continue
    }
    if (ctx !== undefined && ctx.inTransaction && active.has(String(ctx.producerId))) continue
    out.push(m)
  }
  return out
}

interface KafkajsBatchLike { rawMessages?: KafkajsFetchedRecord[], messagesWithinOffset?: KafkajsFetchedRecord[] }
type FetchResponse = { responses?: Array<{ partitions?: Array<{ abortedTransactions?: AbortedTransaction[], messages?: unknown[] }> }> }

/**
 * Patches every kafkajs copy loaded in this process (and ours) so that consumers and tail() see
 * committed records only (see 4. above). Idempotent; returns how many copies are patched.
 */
export function patchKafkajsAbortFilter (): number {
  const files = new Set<string>()
  try { files.add(require.resolve('kafkajs/src/consumer/batch.js')) } catch {}
  const suffix = path.join('kafkajs', 'src', 'consumer', 'batch.js')
  for (const f of Object.keys(require.cache)) if (f.endsWith(suffix)) files.add(f)
  let patched = 0
  for (const file of files) {
    type Ctor = (new (topic: string, fetchedOffset: string, data: object) => KafkajsBatchLike & { messages?: unknown }) & { prototype: Record<string | symbol, unknown> }
    let Batch: Ctor
    let Broker: { prototype: Record<string | symbol, unknown> }
    try {
      Batch = require(file) as Ctor
      Broker = require(path.join(path.dirname(file), '..', 'broker', 'index.js')) as { prototype: Record<string | symbol, unknown> }
      if (Batch.prototype[ABORT_FILTER_PATCHED] === true) { patched++; continue }
      // The setter below relies on kafkajs 2.2's Batch: a copy of another shape is left as it is
      // (consume() then refuses transactional records from it).
      const probe = new Batch('probe', '0', { partition: 0, highWatermark: '0', messages: [], abortedTransactions: [] })
      if (!Array.isArray(probe.rawMessages) || !Array.isArray(probe.messagesWithinOffset) || !Array.isArray(probe.messages)) continue
    } catch { continue }
    const fetch = Broker.prototype.fetch as (this: unknown, ...args: unknown[]) => Promise<FetchResponse>
    if (typeof fetch !== 'function' || Object.getOwnPropertyDescriptor(Batch.prototype, 'messages') !== undefined) continue
    Broker.prototype.fetch = async function (this: unknown, ...args: unknown[]): Promise<FetchResponse> {
      const res = await fetch.apply(this, args)
      for (const t of res?.responses ?? []) {
        for (const part of t.partitions ?? []) {
          const list = part.abortedTransactions
          if (Array.isArray(list) && list.length > 0 && Array.isArray(part.messages)) Object.defineProperty(part.messages, ABORTED_TRANSACTIONS, { value: list })
        }
      }
      return res
    }
    // Batch's constructor assigns `this.messages` last, once rawMessages and messagesWithinOffset
    // are set: the assignment reaches this setter, which stores the records filtered here instead.
    Object.defineProperty(Batch.prototype, 'messages', {
      configurable: true,
      get () { return undefined },
      set (this: KafkajsBatchLike, value: unknown) {
        const aborted = (this.rawMessages as unknown as Record<symbol, AbortedTransaction[] | undefined> | undefined)?.[ABORTED_TRANSACTIONS]
        const messages = aborted === undefined || this.messagesWithinOffset === undefined ? value : committedRecords(this.messagesWithinOffset, aborted)
        Object.defineProperty(this, 'messages', { value: messages, writable: true, enumerable: true, configurable: true })
      }
    })
    Object.defineProperty(Batch.prototype, ABORT_FILTER_PATCHED, { value: true })
    patched++
  }
  return patched
}

/** True when the records of a kafkajs batch were filtered by committedRecords (when they needed it). */
function abortFilterActive (batch: object): boolean {
  return (Object.getPrototypeOf(batch) as Record<symbol, unknown>)[ABORT_FILTER_PATCHED] === true
}

// ---------------------------------------------------------------------------
// Errors

const AUTH_TYPES = new Set([
  'SASL_AUTHENTICATION_FAILED', 'ILLEGAL_SASL_STATE', 'UNSUPPORTED_SASL_MECHANISM', 'TOPIC_AUTHORIZATION_FAILED',
  'GROUP_AUTHORIZATION_FAILED', 'CLUSTER_AUTHORIZATION_FAILED', 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
  'DELEGATION_TOKEN_AUTH_DISABLED'
])

function chain (err: unknown): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = []
  let e = err as Record<string, unknown> | undefined
  while (e !== undefined && e !== null && typeof e === 'object' && out.length < 10) {
    out.push(e)
    e = (e.cause ?? e.originalError) as Record<string, unknown> | undefined
  }
  return out
}

/** Maps any kafkajs error to a KafkaPortError with a reason. */
export function toPortError (err: unknown, what: string): KafkaPortError {
  if (err instanceof KafkaPortError) return err
  const all = chain(err)
  const msg = (err as Error)?.message ?? String(err)
  const causes = all.map((e) => String(e.message ?? '')).filter((m, i, a) => m !== '' && a.indexOf(m) === i).join(': ')
  const text = `${what}: ${causes !== '' ? causes : msg}`
  for (const e of all) {
    const name = String(e.name ?? '')
    const type = String(e.type ?? '')
    if (name.includes('SASL') || AUTH_TYPES.has(type)) return new KafkaPortError('auth', text, { cause: err, retriable: false })
    if (type === 'UNKNOWN_TOPIC_OR_PARTITION') return new KafkaPortError('unknown-topic', text, { cause: err, retriable: false })
    if (type === 'INVALID_REPLICATION_FACTOR' || type === 'INVALID_PARTITIONS' || type === 'INVALID_CONFIG' || type === 'INVALID_TOPIC_EXCEPTION' ||
      type === 'MESSAGE_TOO_LARGE' || type === 'RECORD_LIST_TOO_LARGE' || type === 'INVALID_TIMESTAMP' || type === 'CORRUPT_MESSAGE' ||
      // A record the topic refuses, such as one without a key sent to a compacted topic: resending it cannot help.
      type === 'INVALID_RECORD') {
      return new KafkaPortError('config', text, { cause: err, retriable: false })
    }
  }
  for (const e of all) {
    const name = String(e.name ?? '')
    if (name.includes('Connection') || name.includes('Timeout') || name.includes('BrokerNotFound') || name === 'KafkaJSNumberOfRetriesExceeded' ||
      (e as { code?: string }).code === 'ECONNREFUSED') {
      return new KafkaPortError('connection', text, { cause: err, retriable: true })
    }
  }
  return new KafkaPortError('kafka', text, { cause: err, retriable: true })
}

/**
 * The errors of tail() and readAt() reading a topic: UNKNOWN_TOPIC_OR_PARTITION is retriable there.
 * Both read a topic describe() has just found (readAt at the mirror's start, tail() after its own
 * describe(), at replay's start), so a broker answering it (its metadata fetch, or a fetch) is one
 * whose metadata lags, as a KRaft broker's right after the topic was re-created; fatal, as elsewhere,
 * it failed the mirror's or replay's start. A topic really gone fails the next session's describe().
 */
function readError (err: unknown): unknown {
  if (!(err instanceof KafkaPortError) || err.reason !== 'unknown-topic') return err
  return new KafkaPortError('connection', err.message, { cause: err.cause ?? err, retriable: true })
}

// ---------------------------------------------------------------------------
// The port

const CONCURRENCY = 8
const TAIL_FETCH_BYTES = 4 * 1024 * 1024
/** readAt's fetches in flight at once (over one connection per broker). */
const READ_AT_IN_FLIGHT = 8

function toMessage (m: { offset: string, key: Buffer | null, value: Buffer | null, headers?: KafkajsHeaders, timestamp: string }, inexact: () => void): PortMessage {
  // The patched decoder's list, without orderedHeadersOf's wrapper object: this runs per record.
  let headers = (m.headers as Record<symbol, WalHeader[] | undefined> | undefined)?.[ORDERED_HEADERS]
  if (headers === undefined) {
    const h = orderedHeadersOf(m.headers)
    if (!h.exact) inexact()
    headers = h.headers
  }
  return { offset: Number(m.offset), key: m.key ?? null, value: m.value ?? null, headers, timestamp: Number(m.timestamp) }
}

const LEADER_WAIT_MS = 30_000

/** A batch as consume() handles it before delivery: kafkajs's first offset of a batch it filtered to nothing. */
interface FetchedBatch extends PortBatch { firstOffset?: number }

/**
 * Waits until every partition of a topic just created has a leader. Not kafkajs's own
 * `waitForLeaders`: a KRaft broker answers UNKNOWN_TOPIC_OR_PARTITION until the new topic's
 * metadata has propagated, and kafkajs gives up on that instead of asking again, which made a
 * topic that had just been created look missing.
 */
async function waitForLeaders (admin: Admin, topic: string): Promise<void> {
  const deadline = Date.now() + LEADER_WAIT_MS
  for (let attempt = 0; ; attempt++) {
    let why: unknown = null
    try {
      const md = await admin.fetchTopicMetadata({ topics: [topic] })
      const parts = md.topics.find((t) => t.name === topic)?.partitions ?? []
      if (parts.length > 0 && parts.every((p) => p.leader >= 0)) return
    } catch (err) {
      if (!chain(err).some((e) => e.type === 'UNKNOWN_TOPIC_OR_PARTITION' || e.type === 'LEADER_NOT_AVAILABLE')) throw toPortError(err, `creating topic ${topic}`)
      why = err
    }
    if (Date.now() >= deadline) {
      throw new KafkaPortError('kafka', `creating topic ${topic}: its partitions have no leader after ${LEADER_WAIT_MS} ms`, { cause: why ?? undefined, retriable: true })
    }
    await delay(Math.min(20 * 2 ** attempt, 500))
  }
}

class KafkajsPort implements KafkaPort {
  private admin: Admin | null = null
  private adminConnecting: Promise<Admin> | null = null
  private readonly consumers = new Set<Consumer>()
  private readonly producers = new Set<Producer>()
  private readonly clusters = new Set<{ disconnect (): Promise<void> }>()
  private warnedInexact = false

  constructor (private readonly kafka: Kafka, private readonly opts: KafkajsPortOptions) {
    patchKafkajsDecoders()
    patchKafkajsEncoders()
    patchKafkajsAbortFilter()
  }

  private inexact = (): void => {
    if (this.warnedInexact) return
    this.warnedInexact = true
    process.emitWarning('writeahead/kafka: kafkajs headers arrived without their order (the decoder patch is not active for this kafkajs copy); interleaved duplicate headers may be reordered', { code: 'WRITEAHEAD_KAFKA_HEADERS' })
  }

  private async getAdmin (): Promise<Admin> {
    if (this.admin !== null) return this.admin
    if (this.adminConnecting === null) {
      const admin = this.kafka.admin()
      this.adminConnecting = admin.connect().then(() => { this.admin = admin; return admin }, async (err) => {
        this.adminConnecting = null
        await admin.disconnect().catch(() => {})
        throw err
      })
    }
    return this.adminConnecting
  }

  async describe (topic: string): Promise<PartitionInfo[]> {
    try {
      const admin = await this.getAdmin()
      const topics = await admin.listTopics()
      if (!topics.includes(topic)) throw new KafkaPortError('unknown-topic', `topic ${topic} does not exist`, { retriable: false })
      const offsets = await admin.fetchTopicOffsets(topic)
      return offsets.map((o) => ({ partition: o.partition, low: Number(o.low), high: Number(o.high) })).sort((a, b) => a.partition - b.partition)
    } catch (err) {
      throw toPortError(err, `describing topic ${topic}`)
    }
  }

  async createTopic (topic: string, o: CreateTopicOptions): Promise<void> {
    const admin = await this.getAdmin().catch((err) => { throw toPortError(err, `creating topic ${topic}`) })
    try {
      await admin.createTopics({
        waitForLeaders: false,
        topics: [{
          topic,
          numPartitions: o.partitions,
          replicationFactor: o.replicationFactor ?? -1,
          configEntries: Object.entries(o.configs ?? {}).map(([name, value]) => ({ name, value }))
        }]
      })
    } catch (err) {
      // Also created a moment ago, maybe by another process: its leaders are waited for too.
      if (!chain(err).some((e) => e.type === 'TOPIC_ALREADY_EXISTS')) throw toPortError(err, `creating topic ${topic}`)
    }
    await waitForLeaders(admin, topic)
  }

  async consume (o: ConsumeOptions): Promise<Consumption> {
    const c = this.opts.consumer ?? {}
    const consumer = this.kafka.consumer({
      groupId: o.groupId,
      allowAutoTopicCreation: false,
      readUncommitted: false,
      sessionTimeout: c.sessionTimeout,
      rebalanceTimeout: c.rebalanceTimeout,
      heartbeatInterval: c.heartbeatInterval,
      maxWaitTimeInMs: c.maxWaitTimeInMs,
      maxBytesPerPartition: c.maxBytesPerPartition,
      maxBytes: c.maxBytes,
      // The caller owns recovery: it restarts from its own durable positions.
      retry: { ...c.retry, restartOnFailure: async () => false }
    })
    this.consumers.add(consumer)
    const topic = o.topic
    let failed = false
    let stopped = false
    const fail = (err: unknown, fromCaller = false): void => {
      if (failed || stopped) return
      failed = true
      // The caller's own errors (onBatch) reach it unchanged; kafkajs errors get a reason.
      o.onError(fromCaller && err instanceof Error ? err : toPortError(err, `consuming ${topic}`))
    }
    // Numeric positions: 'earliest' and 'latest' are resolved through the offsets API.
    let bounds = new Map<number, PartitionInfo>()
    const resolve = (p: number): number | null => {
      const pos = o.position(p)
      if (typeof pos === 'number') return pos
      const b = bounds.get(p)
      if (b === undefined) return null
      return pos === 'earliest' ? b.low : b.high
    }
    /** The offset the next delivered batch must start at (messages below are dropped). */
    const expected = new Map<number, number>()
    /**
     * Where kafkajs fetches each partition next if nothing but this port moves it: the last seek,
     * or one past the last batch resolved. Kept in kafkajs's fetch order, not in delivery order as
     * `expected` is (batches are delivered after kafkajs fetched the next): a batch fetched from
     * below it was fetched where kafkajs moved by itself, which it does only after Kafka answered
     * OFFSET_OUT_OF_RANGE. The partition restarted below the position (the topic was deleted and
     * re-created, or truncated) even if, by the time kafkajs fetched from its earliest offset, it
     * had grown past the position again: a high watermark compared with the position misses that,
     * and the new records below it would be dropped unnoticed. A fetch from below `expected` alone
     * is no sign: after a rebalance the port's seek goes back to the caller's durable position,
     * behind batches still being delivered.
     */
    const fetchAt = new Map<number, number>()
    /** Seeks per partition: a batch that was being handled when the port seeked does not set fetchAt (the seek decides where kafkajs fetches next). */
    const seeks = new Map<number, number>()
    // Batches of one partition reach onBatch one at a time, also those kafkajs filters out
    // entirely (only markers or aborted records), which it reports through an event only.
    const queues = new Map<number, Promise<void>>()
    const enqueue = (p: number, fn: () => Promise<void>): Promise<void> => {
      const next = (queues.get(p) ?? Promise.resolve()).then(() => failed || stopped ? undefined : fn())
      const guarded = next.catch((err) => { fail(err, true); throw err })
      queues.set(p, guarded.catch(() => {}))
      return guarded
    }
    /**
     * `fetchedFrom`: the offset kafkajs fetched the batch from, or null for a batch kafkajs filtered
     * to nothing (it reports those without it). kafkajs fetches a partition from where its previous
     * batch ended, or from a seek: it fetches from elsewhere only after Kafka answered
     * OFFSET_OUT_OF_RANGE, when it silently moves to the topic's earliest offset.
     */
    const deliver = async (b: FetchedBatch, fetchedFrom: number | null, movedBack: boolean): Promise<void> => {
      const want = expected.get(b.partition)
      if (want !== undefined) {
        // Where Kafka moved the consumer, once a move is confirmed: the offset kafkajs fetched from
        // (the earliest offset, as kafkajs resets), or the earliest offset Kafka now reports. Not the
        // batch's first record: aborted records and markers may come first, and they were not
        // deleted (a reset counts only the offsets it passed over).
        let at: number | undefined
        // Moved forward: the records from `want` were deleted before they were read (kafkajs
        // moves only to the earliest offset).
        let moved = fetchedFrom !== null && fetchedFrom > want
        if (moved) at = fetchedFrom as number
        // Moved back by kafkajs itself (see fetchAt): the partition restarted below `want`, whatever
        // its high watermark is now. For a batch filtered to nothing kafkajs does not say where it
        // fetched from: Kafka's earliest offset is where it moved to.
        if (!moved && movedBack) {
          moved = true
          at = fetchedFrom ?? (await this.describe(topic)).find((x) => x.partition === b.partition)?.low
        }
        // Or the partition now ends below `want` (re-created or truncated; it never shrinks
        // otherwise), and kafkajs moved back to its beginning. A leader elected a moment ago can
        // report a high watermark behind records already read, so Kafka's offsets API, which
        // answers only once the leader caught up, confirms it.
        if (!moved && b.highWatermark < want) {
          const now = (await this.describe(topic)).find((x) => x.partition === b.partition)
          moved = now !== undefined && now.high < want
          if (moved) at = fetchedFrom ?? now?.low
        }
        // Filtered to nothing and starting past `want`: a hole left by compaction, or records
        // deleted. Kafka's earliest offset past `want` tells which (such batches are rare: only
        // transaction markers or aborted records).
        if (!moved && fetchedFrom === null && b.messages.length === 0 && b.firstOffset !== undefined && b.firstOffset > want) {
          const low = (await this.describe(topic)).find((x) => x.partition === b.partition)?.low
          moved = low !== undefined && low > want
          if (moved) at = low
        }
        if (moved) b = { ...b, reset: { expected: want, at } }
        else {
          if (b.nextOffset <= want) return
          if (b.messages.length > 0 && b.messages[0].offset < want) b = { ...b, messages: b.messages.filter((m) => m.offset >= want) }
        }
      }
      const { firstOffset: _first, ...batch } = b
      await o.onBatch(batch)
      expected.set(b.partition, b.nextOffset)
    }

    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const assigned = e.payload.memberAssignment[topic] ?? []
      for (const p of assigned) {
        seeks.set(p, (seeks.get(p) ?? 0) + 1)
        const at = resolve(p)
        if (at === null) { fetchAt.delete(p); continue }
        expected.set(p, at)
        fetchAt.set(p, at)
        try { consumer.seek({ topic, partition: p, offset: String(at) }) } catch (err) { fail(err) }
      }
    })
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      const ev = e.payload
      // batchSize 0 is kafkajs's "empty due to filtering" path: eachBatch is not called.
      if (ev.topic !== topic || ev.batchSize !== 0) return
      const nextOffset = Number(ev.lastOffset) + 1
      const firstOffset = ev.firstOffset === null ? undefined : Number(ev.firstOffset)
      // Such a batch holds nothing below the offset it was fetched from, and kafkajs resolved it
      // itself (it skips a partition with a seek pending): one that starts below fetchAt was
      // fetched from below it.
      const pos = fetchAt.get(ev.partition)
      const movedBack = pos !== undefined && (firstOffset ?? nextOffset - 1) < pos
      if (pos !== undefined) fetchAt.set(ev.partition, nextOffset)
      const b: FetchedBatch = { partition: ev.partition, messages: [], nextOffset, highWatermark: Number(ev.highWatermark), firstOffset }
      enqueue(ev.partition, () => deliver(b, null, movedBack)).catch(() => {})
    })
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) fail(e.payload.error)
    })

    try {
      const info = await this.describe(topic)
      bounds = new Map(info.map((b) => [b.partition, b]))
      await consumer.connect()
      await consumer.subscribe({ topics: [topic], fromBeginning: true })
      const concurrency = c.partitionsConsumedConcurrently ?? Math.min(CONCURRENCY, Math.max(1, info.length))
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: concurrency,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload) => {
          if (!isRunning() || isStale() || failed || stopped) return
          const p = batch.partition
          const fetched = batch as unknown as { fetchedOffset: string, messagesWithinOffset?: KafkajsFetchedRecord[] }
          if (!abortFilterActive(batch) && fetched.messagesWithinOffset?.some((m) => m.batchContext?.inTransaction === true) === true) {
            fail(new KafkaPortError('config', `consuming ${topic}: this kafkajs copy's batches were not patched to drop aborted transactions (kafkajs 2.2.x is supported), so read_committed cannot be guaranteed`, { retriable: false }))
            return
          }
          const b: PortBatch = {
            partition: p,
            messages: batch.messages.map((m) => toMessage(m as never, this.inexact)),
            nextOffset: Number(batch.lastOffset()) + 1,
            highWatermark: Number(batch.highWatermark)
          }
          // kafkajs fetches this partition's next batch once eachBatch returns: let it do so while
          // this batch is being written and synced, but hold at most one batch in waiting. Nothing
          // is lost by returning early: the caller's durable position, not kafkajs's, is where a
          // restarted session resumes, and the queue keeps batches in order.
          const before = queues.get(p)
          const from = Number(fetched.fetchedOffset)
          const pos = fetchAt.get(p)
          const seek = seeks.get(p)
          const fetchedFrom = Number.isSafeInteger(from) ? from : null
          const movedBack = pos !== undefined && fetchedFrom !== null && fetchedFrom < pos
          enqueue(p, () => deliver(b, fetchedFrom, movedBack)).catch(() => {}) // a failure reaches o.onError through fail()
          if (before !== undefined) await before
          // A seek meanwhile (a rebalance) decides where kafkajs fetches next, not this batch.
          if (seeks.get(p) !== seek) return
          resolveOffset(batch.lastOffset())
          if (pos !== undefined) fetchAt.set(p, b.nextOffset)
          await heartbeat()
        }
      })
    } catch (err) {
      this.consumers.delete(consumer)
      await consumer.disconnect().catch(() => {})
      throw toPortError(err, `consuming ${topic}`)
    }

    return {
      commit: async (partition, nextOffset) => {
        try {
          await consumer.commitOffsets([{ topic, partition, offset: String(nextOffset) }])
        } catch (err) {
          throw toPortError(err, `committing offsets of ${topic}`)
        }
      },
      stop: async () => {
        stopped = true
        this.consumers.delete(consumer)
        await consumer.disconnect().catch(() => {})
        await Promise.allSettled([...queues.values()])
      }
    }
  }

  async producer (): Promise<PortProducer> {
    const po = this.opts.producer ?? {}
    const producer = this.kafka.producer({
      idempotent: true,
      // kafkajs#598: more than one request in flight breaks idempotent sequence numbers.
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: po.retry
    })
    this.producers.add(producer)
    try {
      await producer.connect()
    } catch (err) {
      this.producers.delete(producer)
      await producer.disconnect().catch(() => {})
      throw toPortError(err, 'connecting the producer')
    }
    return {
      addsProvenance: true,
      send: async (topic: string, records: ProduceRecord[]) => {
        try {
          await producer.send({
            topic,
            acks: -1,
            timeout: po.timeout,
            compression: po.compression,
            messages: records.map((r) => ({
              partition: r.partition,
              key: r.key,
              value: r.value,
              headers: kafkajsHeaders(r.headers, r.provenance) as never,
              timestamp: String(r.timestamp)
            }))
          })
        } catch (err) {
          throw toPortError(err, `producing to ${topic}`)
        }
      },
      close: async () => {
        this.producers.delete(producer)
        await producer.disconnect().catch(() => {})
      }
    }
  }

  async tail (topic: string, partition: number, count: number): Promise<PortMessage[]> {
    const info = (await this.describe(topic)).find((b) => b.partition === partition)
    if (info === undefined) throw new KafkaPortError('unknown-topic', `topic ${topic} has no partition ${partition}`, { retriable: false })
    if (count <= 0 || info.high <= info.low) return []
    return this.withCluster(topic, `reading the tail of ${topic}/${partition}`, async (cluster, Batch) => {
      // Read from `count` back, forward, keeping the last `count` records seen (gaps and markers make
      // offsets sparser than records, so step further back while too few were found).
      let back = count
      for (;;) {
        const from = Math.max(info.low, info.high - back)
        const out = await this.fetchRange(cluster, Batch, topic, partition, from, info.high)
        if (out.length >= count || from === info.low) return out.slice(-count)
        back *= 4
      }
    }).catch((err) => { throw readError(err) })
  }

  async readAt (topic: string, at: ReadonlyArray<{ partition: number, offset: number }>): Promise<Array<PortMessage | 'not-data' | null>> {
    if (at.length === 0) return []
    // A kafkajs without the cluster this reads through (internals other than 2.2's) cannot tell
    // what is at an offset: nothing found, so the mirror continues as with a port without readAt
    // (the check is an addition; consuming does not need the cluster).
    if (this.clusterFactory() === undefined) return at.map(() => null)
    const where = at.length <= 4 ? at.map((a) => `${a.partition}:${a.offset}`).join(', ') : `${at.length} offsets`
    return this.withCluster(topic, `reading ${topic} at ${where}`, async (cluster, Batch) => {
      const readOne = async ({ partition, offset }: { partition: number, offset: number }): Promise<PortMessage | 'not-data' | null> => {
        let data: KafkajsFetchedPartition | undefined
        try {
          // One partition per request, at most a byte: the broker still answers with the whole record
          // batch holding `offset` (or the next one), and only that (KIP-74). Several partitions in
          // one request would get a batch each only while the bytes last.
          data = await this.fetchOnce(cluster, topic, partition, offset, 1)
        } catch (err) {
          if (chain(err).some((e) => e.type === 'OFFSET_OUT_OF_RANGE')) return null
          throw err
        }
        if (data === undefined) return null
        // Committed data only (the abort filter and the control-record filter of Batch), and what
        // else the batch holds at `offset`: a marker, or a record of an aborted transaction.
        const found = new Batch(topic, String(offset), data).messages.find((m) => Number(m.offset) === offset)
        if (found !== undefined) return toMessage(found, this.inexact)
        return data.messages.some((m) => Number(m.offset) === offset) ? 'not-data' : null
      }
      // The first request to each broker goes alone: kafkajs opens a broker's fetch connection on
      // its first fetch, without a lock, and fetches sent at once opened one each; all but the last
      // were never closed, and kept the process alive. The others then go over it, READ_AT_IN_FLIGHT
      // at a time: a broker answers one request per connection at a time while kafkajs times each
      // from when it was sent, so with thousands sent at once the last ones timed out, and the
      // whole check failed (on every reconnect).
      await cluster.refreshMetadataIfNecessary()
      const first: number[] = []
      const rest: number[] = []
      const brokers = new Set<string>()
      at.forEach(({ partition }, i) => {
        const nodeId = Object.keys(cluster.findLeaderForPartitions(topic, [partition]))[0] ?? ''
        if (brokers.has(nodeId)) rest.push(i)
        else { brokers.add(nodeId); first.push(i) }
      })
      const out = new Array<PortMessage | 'not-data' | null>(at.length)
      for (const i of first) out[i] = await readOne(at[i])
      let next = 0
      const worker = async (): Promise<void> => {
        while (next < rest.length) {
          const i = rest[next++]
          out[i] = await readOne(at[i])
        }
      }
      await Promise.all(Array.from({ length: Math.min(READ_AT_IN_FLIGHT, rest.length) }, worker))
      return out
    }).catch((err) => { throw readError(err) })
  }

  /**
   * Runs `fn` with a kafkajs cluster of its own (no consumer group, so nothing is left behind on
   * the brokers), read_committed, and kafkajs's Batch (which filters a fetch's records as consumers
   * see them); disconnects it after.
   */
  private clusterFactory (): symbol | undefined {
    return Object.getOwnPropertySymbols(this.kafka).find((s) => s.description === 'private:Kafka:createCluster')
  }

  private async withCluster<T> (topic: string, what: string, fn: (cluster: KafkajsCluster, Batch: KafkajsBatchCtor) => Promise<T>): Promise<T> {
    const create = this.clusterFactory()
    if (create === undefined) throw new KafkaPortError('config', `${what}: this kafkajs version does not expose its cluster (kafkajs 2.2.x is supported)`, { retriable: false })
    const cluster = (this.kafka as unknown as Record<symbol, (o: object) => KafkajsCluster>)[create]({ allowAutoTopicCreation: false, isolationLevel: 1 })
    this.clusters.add(cluster)
    const Batch = require(path.join(path.dirname(require.resolve('kafkajs/src/protocol/decoder.js')), '..', 'consumer', 'batch.js')) as KafkajsBatchCtor
    try {
      await cluster.connect()
      await cluster.addTargetTopic(topic)
      return await fn(cluster, Batch)
    } catch (err) {
      throw toPortError(err, what)
    } finally {
      this.clusters.delete(cluster)
      await cluster.disconnect().catch(() => {})
    }
  }

  /** One fetch of one partition from `at`, read_committed, from its leader. */
  private async fetchOnce (cluster: KafkajsCluster, topic: string, partition: number, at: number, maxBytes: number): Promise<KafkajsFetchedPartition | undefined> {
    await cluster.refreshMetadataIfNecessary()
    const leader = cluster.findLeaderForPartitions(topic, [partition])
    const nodeId = Object.keys(leader)[0]
    if (nodeId === undefined) throw new KafkaPortError('connection', `no leader for ${topic}/${partition}`)
    const broker = await cluster.findBroker({ nodeId })
    const res = await broker.fetch({
      replicaId: -1,
      isolationLevel: 1,
      maxWaitTime: 0,
      minBytes: 1,
      maxBytes: Math.max(maxBytes, TAIL_FETCH_BYTES),
      topics: [{ topic, partitions: [{ partition, fetchOffset: String(at), maxBytes }] }]
    })
    return res.responses.find((r) => r.topicName === topic)?.partitions.find((x) => x.partition === partition)
  }

  private async fetchRange (cluster: KafkajsCluster, Batch: KafkajsBatchCtor, topic: string, partition: number, from: number, to: number): Promise<PortMessage[]> {
    const out: PortMessage[] = []
    let at = from
    while (at < to) {
      const data = await this.fetchOnce(cluster, topic, partition, at, TAIL_FETCH_BYTES)
      if (data === undefined || data.messages.length === 0) break
      const batch = new Batch(topic, String(at), data)
      let last = at - 1
      for (const m of data.messages) last = Math.max(last, Number(m.offset))
      for (const m of batch.messages) if (Number(m.offset) < to) out.push(toMessage(m, this.inexact))
      if (last < at) break
      at = last + 1
      const lso = Number(data.lastStableOffset ?? -1)
      if (lso >= 0 && at >= lso) break
    }
    return out
  }

  async close (): Promise<void> {
    const all = [
      ...[...this.consumers].map((c) => c.disconnect()),
      ...[...this.producers].map((p) => p.disconnect()),
      ...[...this.clusters].map((c) => c.disconnect())
    ]
    this.consumers.clear()
    this.producers.clear()
    this.clusters.clear()
    const admin = this.admin
    const connecting = this.adminConnecting
    this.admin = null
    this.adminConnecting = null
    if (admin !== null) all.push(admin.disconnect())
    // A connect still retrying is not waited for: it is disconnected whenever it settles.
    else if (connecting !== null) connecting.then((a) => a.disconnect(), () => {}).catch(() => {})
    await Promise.allSettled(all)
  }
}

/** A partition of a kafkajs fetch response, records as decoded (control records and aborted ones included). */
interface KafkajsFetchedPartition { partition: number, lastStableOffset?: string, messages: Array<{ offset: string }> }

interface KafkajsCluster {
  connect (): Promise<void>
  disconnect (): Promise<void>
  addTargetTopic (topic: string): Promise<void>
  refreshMetadataIfNecessary (): Promise<void>
  findLeaderForPartitions (topic: string, partitions: number[]): Record<string, number[]>
  findBroker (o: { nodeId: string }): Promise<{
    fetch (o: object): Promise<{ responses: Array<{ topicName: string, partitions: KafkajsFetchedPartition[] }> }>
  }>
}

/** kafkajs's Batch: the committed data records of a fetched partition, from the offset fetched. */
type KafkajsBatchCtor = new (topic: string, fetched: string, data: unknown) => { messages: Array<Parameters<typeof toMessage>[0]> }

/**
 * The port on a kafkajs `Kafka` instance. The instance's own settings (brokers, SSL, SASL, retry,
 * timeouts) apply to every client the port creates.
 */
export function kafkajsPort (kafka: Kafka, options: KafkajsPortOptions = {}): KafkaPort {
  return new KafkajsPort(kafka, options)
}
