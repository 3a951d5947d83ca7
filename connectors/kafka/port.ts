/**
 * The port: everything the connectors need from a Kafka client, and nothing more. Three
 * capabilities (consume from explicit offsets, produce with acks, read a partition's tail) plus
 * topic metadata. `kafkajsPort()` implements it on kafkajs; another client (for example
 * `@confluentinc/kafka-javascript`'s KafkaJS-compatible API) plugs in by implementing this
 * interface, without touching `mirror()` or `replay()`.
 *
 * `readAt` and `createTopic` are optional capabilities.
 *
 * Offsets are JavaScript numbers (Kafka's int64 offsets stay below 2^53 in practice, as WAL
 * offsets must). Headers are an ordered list: order and duplicate keys are kept, values may be null.
 */
import type { Provenance } from './provenance.js'
import type { WalHeader } from '../../src/index.js'

/** A record as Kafka holds it, byte for byte. */
export interface PortRecord {
  key: Buffer | null
  /** null is a tombstone. */
  value: Buffer | null
  headers: WalHeader[]
  /** Milliseconds since the epoch (the record's CreateTime, or LogAppendTime if the topic uses it). */
  timestamp: number
}

/** A consumed record with its offset. */
export interface PortMessage extends PortRecord {
  offset: number
}

/** Records fetched from one partition, in offset order, committed data only (read_committed). */
export interface PortBatch {
  partition: number
  /** Data records only: no control records (transaction markers), nothing from aborted transactions. May be empty. */
  messages: PortMessage[]
  /** Where the next fetch of this partition starts: one past the last offset this fetch covered, markers included. */
  nextOffset: number
  /** The partition's high watermark when fetched (for lag). */
  highWatermark: number
  /**
   * Present when this batch does not continue from `expected`, where the partition's previous
   * batch ended (or the position asked for), because the consumer could not read there: Kafka
   * answered OFFSET_OUT_OF_RANGE and the consumer moved to another offset. Either the records from
   * `expected` on were deleted (retention, deleteRecords) and the batch starts later, or the
   * partition ended before `expected` (the topic was deleted and re-created, or truncated) and
   * the batch starts earlier: also when the partition has grown past `expected` again by the time
   * it was fetched (a port must tell this move from its own seeks, not from the high watermark). Records below `expected` are then delivered, not dropped. `at`:
   * the offset Kafka moved the consumer to (its earliest offset), where known; the batch's first
   * record can be later (aborted records and transaction markers are not delivered), and offsets
   * between `at` and it were not lost. Without `at`, the first record (or `nextOffset`) stands for it.
   */
  reset?: { expected: number, at?: number }
}

export interface PartitionInfo {
  partition: number
  /** First available offset. */
  low: number
  /** High watermark: one past the last offset. */
  high: number
}

/** Where a consumer starts in a partition. */
export type StartPosition = number | 'earliest' | 'latest'

export interface ConsumeOptions {
  topic: string
  /** The consumer group: used for partition assignment and to display lag in Kafka tools, never as the source of truth. */
  groupId: string
  /**
   * Where to (re)start each partition, asked whenever partitions are assigned. The port must make
   * the next delivered batch of that partition start there, or mark it with `reset` if Kafka no
   * longer has that offset.
   */
  position (partition: number): StartPosition
  /**
   * Called for each fetched batch; batches of one partition are delivered one at a time, in order.
   * A rejection stops the consumption and is reported through onError.
   */
  onBatch (batch: PortBatch): Promise<void>
  /**
   * The consumption failed and stopped; the caller decides whether and when to start again. Kafka
   * failures arrive as KafkaPortError; an error thrown by onBatch arrives unchanged.
   */
  onError (err: Error): void
}

export interface Consumption {
  /** Stores `nextOffset` as the group's committed offset (for lag display in Kafka tools). */
  commit (partition: number, nextOffset: number): Promise<void>
  /** Stops consuming and leaves the group; waits for a batch being processed. */
  stop (): Promise<void>
}

/** A record to produce, with its target partition. */
export interface ProduceRecord extends PortRecord {
  partition: number
  /**
   * The WAL position the record comes from, given only to a producer with `addsProvenance`: it
   * sends the provenance header for it after `headers` (provenance.ts), built while encoding.
   * Built for every record ahead of the send, the header lived until Kafka's acknowledgement, so
   * young-generation collections copied it, often twice.
   */
  provenance?: Provenance
}

export interface PortProducer {
  /**
   * True when send() turns each record's `provenance` into the provenance header itself. Otherwise
   * replay puts the header into `headers`, so a port that knows nothing of provenance still sends it.
   */
  readonly addsProvenance?: boolean
  /**
   * Sends with acks = -1 (all in-sync replicas) through an idempotent producer, keeping the order
   * of `records` within each partition; resolves once every record is acknowledged. On rejection
   * any subset of the records may have been written.
   */
  send (topic: string, records: ProduceRecord[]): Promise<void>
  close (): Promise<void>
}

export interface CreateTopicOptions {
  partitions: number
  replicationFactor?: number
  configs?: Record<string, string>
}

export interface KafkaPort {
  /** Partitions with their low and high offsets. Rejects with reason 'unknown-topic' if the topic does not exist. */
  describe (topic: string): Promise<PartitionInfo[]>
  /** Consume `topic` from explicit positions, read_committed. Resolves once consuming has started. */
  consume (options: ConsumeOptions): Promise<Consumption>
  /** An idempotent producer with acks = -1. */
  producer (): Promise<PortProducer>
  /**
   * The last `count` committed records of a partition (fewer if the partition holds fewer), in
   * offset order, read without a consumer group. Replay reads it at its start, right after
   * describe(): a broker answering, for the read, that it does not know the topic or partition
   * (metadata lagging a re-creation) is a retriable `connection` failure, as in readAt.
   */
  tail (topic: string, partition: number, count: number): Promise<PortMessage[]>
  /**
   * What Kafka holds at exactly `offset` of each requested partition, read without a consumer group,
   * one answer per request, in order (optional capability; `mirror()` uses it to tell a topic
   * deleted and re-created, and grown past a checkpoint, from the one it mirrored, and skips that
   * check without it):
   * - a PortMessage: the committed data record at that offset;
   * - `'not-data'`: a record that is not committed data (a transaction marker, or a record of an
   *   aborted transaction);
   * - `null`: nothing: the offset is outside the partition's offsets (or past its last stable
   *   offset), or compaction removed the record; also where the port cannot read at an offset (the
   *   kafkajs port on a kafkajs that does not expose its cluster): the mirror then continues unchecked.
   * A port reads one record batch per request (the one holding the offset, or the next). The
   * mirror asks about a topic describe() has just found: a broker answering that it does not know
   * the topic or partition (metadata lagging a re-creation) is a retriable `connection` failure.
   */
  readAt? (topic: string, at: ReadonlyArray<{ partition: number, offset: number }>): Promise<Array<PortMessage | 'not-data' | null>>
  /** Creates a topic (optional capability; replay's `createTopic` needs it). */
  createTopic? (topic: string, options: CreateTopicOptions): Promise<void>
  /** Releases every connection the port opened. */
  close (): Promise<void>
}

/**
 * Why a Kafka operation failed:
 * - `connection`: brokers unreachable, timeouts, leadership moving: worth retrying;
 * - `auth`: authentication or authorization failed: fatal;
 * - `unknown-topic`: the topic does not exist: fatal;
 * - `config`: a client option is wrong: fatal;
 * - `kafka`: any other broker error (retriable when `retriable` says so).
 */
export type KafkaFailure = 'connection' | 'auth' | 'unknown-topic' | 'config' | 'kafka'

export class KafkaPortError extends Error {
  readonly reason: KafkaFailure
  readonly retriable: boolean

  constructor (reason: KafkaFailure, message: string, options: { retriable?: boolean, cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'KafkaPortError'
    this.reason = reason
    this.retriable = options.retriable ?? (reason === 'connection' || reason === 'kafka')
  }
}

/** True for an object that implements the port (rather than, say, a kafkajs `Kafka` instance). */
export function isKafkaPort (v: unknown): v is KafkaPort {
  const o = v as Partial<KafkaPort> | null
  return o !== null && typeof o === 'object' && typeof o.describe === 'function' && typeof o.consume === 'function' &&
    typeof o.producer === 'function' && typeof o.tail === 'function' && typeof o.close === 'function'
}
