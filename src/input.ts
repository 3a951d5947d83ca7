import { invalidRecord, WalError } from './errors.js'
import type { AppendInput, Bytes, HeadersInput, RecordInput } from './types.js'

/** A record validated and turned into bytes, ready to be encoded into a batch. */
export interface NormalRecord {
  key: Buffer | null
  value: Buffer
  headerKeys: Buffer[]
  headerValues: Array<Buffer | null>
  timestamp: number
  /** Payload bytes (key + value + headers), what maxRecordBytes bounds. */
  size: number
}

const EMPTY_KEYS: Buffer[] = []
const EMPTY_VALUES: Array<Buffer | null> = []

function toBuffer (v: unknown, what: string): Buffer {
  if (Buffer.isBuffer(v)) return v
  if (typeof v === 'string') return Buffer.from(v)
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
  throw invalidRecord(`${what} must be a Buffer, Uint8Array or string, got ${describe(v)}`)
}

function describe (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  return typeof v
}

function toTimestamp (t: RecordInput['timestamp'], now: number): number {
  if (t === undefined || t === null) return now
  let n: number
  if (typeof t === 'number') n = t
  else if (typeof t === 'bigint') n = Number(t)
  else if (t instanceof Date) n = t.getTime()
  else if (typeof t === 'string' && /^-?\d+$/.test(t)) n = Number(t)
  else throw invalidRecord(`timestamp must be milliseconds (number, numeric string, bigint or Date), got ${JSON.stringify(t)}`)
  if (!Number.isSafeInteger(n)) throw invalidRecord(`timestamp must be an integer number of milliseconds, got ${String(t)}`)
  return n
}

/**
 * Header keys come from a small vocabulary ("trace", "content-type", ...) repeated on every record,
 * so their UTF-8 bytes are kept instead of encoded again per record (a mirror spent 4% of its time
 * there). The buffers are only ever copied from, never handed out. Bounded: once full, new keys
 * are encoded per record as before.
 */
const headerKeyBytes = new Map<string, Buffer>()
const HEADER_KEY_CACHE_ENTRIES = 4096
const HEADER_KEY_CACHE_MAX_LENGTH = 128

function headerKeyBuffer (key: string): Buffer {
  let b = headerKeyBytes.get(key)
  if (b !== undefined) return b
  b = Buffer.from(key)
  if (key.length <= HEADER_KEY_CACHE_MAX_LENGTH && headerKeyBytes.size < HEADER_KEY_CACHE_ENTRIES) headerKeyBytes.set(key, b)
  return b
}

function pushHeader (keys: Buffer[], values: Array<Buffer | null>, key: unknown, value: unknown): void {
  if (typeof key !== 'string') throw invalidRecord(`header keys must be strings, got ${describe(key)}`)
  keys.push(headerKeyBuffer(key))
  values.push(value === null || value === undefined ? null : toBuffer(value, `header ${key}`))
}

function normalHeaders (h: HeadersInput | null | undefined, keys: Buffer[], values: Array<Buffer | null>): void {
  if (h === null || h === undefined) return
  if (Array.isArray(h)) {
    for (const entry of h as unknown[]) {
      if (Array.isArray(entry) && entry.length === 2) pushHeader(keys, values, entry[0], entry[1])
      else if (entry !== null && typeof entry === 'object' && 'key' in entry) pushHeader(keys, values, (entry as { key: unknown }).key, (entry as unknown as { value: unknown }).value)
      else throw invalidRecord('headers array entries must be { key, value } or [key, value]')
    }
    return
  }
  if (typeof h !== 'object') throw invalidRecord(`headers must be an array or an object, got ${describe(h)}`)
  // kafkajs shape: object key order is insertion order; arrays hold duplicates of one key.
  for (const key of Object.keys(h)) {
    const v = (h as Record<string, unknown>)[key]
    if (v === undefined) continue
    if (Array.isArray(v)) for (const item of v) pushHeader(keys, values, key, item)
    else pushHeader(keys, values, key, v)
  }
}

export function normalizeRecord (input: AppendInput, now: number): NormalRecord {
  if (typeof input === 'string' || input instanceof Uint8Array) {
    const value = toBuffer(input, 'value')
    return { key: null, value, headerKeys: EMPTY_KEYS, headerValues: EMPTY_VALUES, timestamp: now, size: value.length }
  }
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw invalidRecord(`a record must be a Buffer, Uint8Array, string or { key?, value, headers?, timestamp? }, got ${describe(input)}`)
  }
  const rec = input as RecordInput
  if (rec.value === undefined || rec.value === null) throw invalidRecord('value is required')
  const value = toBuffer(rec.value, 'value')
  const key = rec.key === undefined || rec.key === null ? null : toBuffer(rec.key, 'key')
  let headerKeys = EMPTY_KEYS
  let headerValues = EMPTY_VALUES
  if (rec.headers !== undefined && rec.headers !== null) {
    headerKeys = []
    headerValues = []
    normalHeaders(rec.headers, headerKeys, headerValues)
  }
  let size = value.length + (key === null ? 0 : key.length)
  for (let i = 0; i < headerKeys.length; i++) size += headerKeys[i].length + (headerValues[i]?.length ?? 0)
  return { key, value, headerKeys, headerValues, timestamp: toTimestamp(rec.timestamp, now), size }
}

export function normalizeRecords (inputs: unknown, now: number): NormalRecord[] {
  if (!Array.isArray(inputs)) throw new WalError('INVALID_ARGUMENT', `appendBatch takes an array of records, got ${describe(inputs)}`)
  const out = new Array<NormalRecord>(inputs.length)
  for (let i = 0; i < inputs.length; i++) out[i] = normalizeRecord(inputs[i] as AppendInput, now)
  return out
}

export function bytesOf (v: Bytes, what: string): Buffer {
  return toBuffer(v, what)
}
