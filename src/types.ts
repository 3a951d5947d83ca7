/** A header as stored: order and duplicate keys are kept, as Kafka keeps them. */
export interface WalHeader {
  key: string
  value: Buffer | null
}

export interface WalRecord {
  partition: number
  offset: number
  timestamp: number
  key: Buffer | null
  /** null only where the record was appended with a null value: a Kafka tombstone. */
  value: Buffer | null
  headers: WalHeader[]
}

export type Bytes = Buffer | Uint8Array | string

/** kafkajs's header shape: `{ [key]: value | value[] }`, duplicates as arrays. */
export type KafkaHeaders = Record<string, Bytes | null | undefined | Array<Bytes | null>>

export type HeadersInput =
  | WalHeader[]
  | Array<{ key: string, value: Bytes | null }>
  | Array<[string, Bytes | null]>
  | KafkaHeaders

export interface RecordInput {
  key?: Bytes | null
  /** null stores a tombstone, as Kafka's compacted topics use them; reads give it back as null. */
  value: Bytes | null
  headers?: HeadersInput | null
  /** Milliseconds since the epoch; a Date, or a numeric string as kafkajs gives them. Defaults to now. */
  timestamp?: number | string | Date | bigint
}

export type AppendInput = Bytes | RecordInput

export interface Checkpoint {
  name: string
  value: Bytes
}

export interface AppendBatchOptions {
  /** Made durable in the same commit as the records, atomically with them. */
  checkpoint?: Checkpoint
  /** Explicit offsets, strictly increasing and >= offsets(p).end; gaps are allowed. */
  offsets?: number[]
}

export interface Offsets {
  /** First retained offset. */
  start: number
  /** Next offset to be assigned. */
  end: number
  /**
   * The offset the next append will get: `end` plus the records of appends still being made
   * durable. Offsets are assigned when append/appendBatch is called, so an appendBatch called in
   * the same synchronous step starts exactly here.
   */
  pending: number
}

export interface IterateOptions {
  from?: number
  to?: number
}

export type SyncMode = 'always' | 'interval' | 'never'

export interface RetentionOptions {
  maxBytes?: number
  maxAgeMs?: number
  /** Never delete a segment holding records some consumer group has not committed past. */
  keepUnconsumed?: boolean
}
