import { atRecord, invalidRecord, WalError } from './errors.js'
import type { AppendInput, Bytes, HeadersInput, RecordInput } from './types.js'

/** A record validated and turned into bytes, ready to be encoded into a batch. */
export interface NormalRecord {
  key: Buffer | null
  value: Buffer | null
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
  if (isBinary(v)) {
    const name = Object.prototype.toString.call(v).slice(8, -1)
    return `${/^[AEIO]/.test(name) ? 'an' : 'a'} ${name}`
  }
  return typeof v
}

/** Typed arrays, DataViews and ArrayBuffers: messages name them by type, not as 'object'. */
function isBinary (v: unknown): boolean {
  return ArrayBuffer.isView(v) || v instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && v instanceof SharedArrayBuffer)
}

const ACCEPTED = 'a Buffer, Uint8Array, string or { key?, value, headers?, timestamp? }'

/** Why an object without a value is refused: it may be binary data other than a Uint8Array. */
function missingValue (input: object): string {
  if (!isBinary(input)) return 'value is required (null for a tombstone)'
  return `a record must be ${ACCEPTED}, got ${describe(input)}; pass its bytes as a Uint8Array (new Uint8Array(x.buffer, x.byteOffset, x.byteLength) of a view, new Uint8Array(x) of an ArrayBuffer)`
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
  if (n > MAX_TIMESTAMP || n < -MAX_TIMESTAMP) throw invalidRecord(`timestamp must be within ±${MAX_TIMESTAMP} ms (about 71,000 years from 1970), got ${String(t)}`)
  return n
}

/**
 * A batch stores each record's timestamp as a zigzag varint of its distance from the first one,
 * computed in a double: two timestamps of one batch at most 2^52 - 2 apart keep it exact (2^53).
 */
export const MAX_TIMESTAMP = 2 ** 51 - 1

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

function headerName (key: unknown): string {
  if (typeof key !== 'string') throw invalidRecord(`header keys must be strings, got ${describe(key)}`)
  return key
}

function headerValue (name: string, value: unknown): Buffer | null {
  if (value === null || value === undefined) return null
  // The common case first: the message naming the header is built only when needed.
  return Buffer.isBuffer(value) ? value : toBuffer(value, `header ${name}`)
}

/**
 * The header lists of a record, and their payload bytes. An array of headers (the mirror's and
 * kafkajs's ordered form) fills lists of its exact length: lists grown by push start at 17 slots,
 * two per record, which was most of a keyed append's garbage.
 */
class Headers {
  keys = EMPTY_KEYS
  values = EMPTY_VALUES
  bytes = 0

  /** Reads `h`; what it read stays here until the next call (one reused instance: read it at once). */
  read (h: HeadersInput): void {
    this.keys = EMPTY_KEYS
    this.values = EMPTY_VALUES
    this.bytes = 0
    if (Array.isArray(h)) return this.readList(h as unknown[])
    if (typeof h !== 'object') throw invalidRecord(`headers must be an array or an object, got ${describe(h)}`)
    // kafkajs shape: object key order is insertion order; arrays hold duplicates of one key.
    const keys: Buffer[] = []
    const values: Array<Buffer | null> = []
    for (const name of Object.keys(h)) {
      const v = (h as Record<string, unknown>)[name]
      if (v === undefined) continue
      const k = headerKeyBuffer(name)
      if (Array.isArray(v)) for (const item of v) { keys.push(k); values.push(headerValue(name, item)) }
      else { keys.push(k); values.push(headerValue(name, v)) }
    }
    let bytes = 0
    for (let i = 0; i < keys.length; i++) bytes += keys[i].length + (values[i]?.length ?? 0)
    // Set only once read whole, from locals: a getter that appends while this runs reuses the instance.
    this.keys = keys
    this.values = values
    this.bytes = bytes
  }

  private readList (h: unknown[]): void {
    const n = h.length
    if (n === 0) return
    const keys = new Array<Buffer>(n)
    const values = new Array<Buffer | null>(n)
    let bytes = 0
    for (let i = 0; i < n; i++) {
      const entry = h[i]
      let name: string
      let v: Buffer | null
      if (entry !== null && typeof entry === 'object' && !Array.isArray(entry) && 'key' in entry) {
        name = headerName((entry as { key: unknown }).key)
        v = headerValue(name, (entry as { value?: unknown }).value)
      } else if (Array.isArray(entry) && entry.length === 2) {
        name = headerName(entry[0])
        v = headerValue(name, entry[1])
      } else {
        throw invalidRecord('headers array entries must be { key, value } or [key, value]')
      }
      const k = headerKeyBuffer(name)
      keys[i] = k
      values[i] = v
      bytes += k.length + (v === null ? 0 : v.length)
    }
    this.keys = keys
    this.values = values
    this.bytes = bytes
  }
}

const scratchHeaders = new Headers()

export function normalizeRecord (input: AppendInput, now: number): NormalRecord {
  if (typeof input === 'string' || input instanceof Uint8Array) {
    const value = toBuffer(input, 'value')
    return { key: null, value, headerKeys: EMPTY_KEYS, headerValues: EMPTY_VALUES, timestamp: now, size: value.length }
  }
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw invalidRecord(`a record must be ${ACCEPTED}, got ${describe(input)}`)
  }
  const rec = input as RecordInput
  // Missing is a mistake; an explicit null is a tombstone.
  if (rec.value === undefined) throw invalidRecord(missingValue(input))
  const value = rec.value === null ? null : toBuffer(rec.value, 'value')
  const key = rec.key === undefined || rec.key === null ? null : toBuffer(rec.key, 'key')
  const size = (value === null ? 0 : value.length) + (key === null ? 0 : key.length)
  const timestamp = toTimestamp(rec.timestamp, now)
  if (rec.headers === undefined || rec.headers === null) {
    return { key, value, headerKeys: EMPTY_KEYS, headerValues: EMPTY_VALUES, timestamp, size }
  }
  const h = scratchHeaders
  h.read(rec.headers)
  return { key, value, headerKeys: h.keys, headerValues: h.values, timestamp, size: size + h.bytes }
}

export function normalizeRecords (inputs: unknown, now: number): NormalRecord[] {
  if (!Array.isArray(inputs)) throw new WalError('INVALID_ARGUMENT', `appendBatch takes an array of records, got ${describe(inputs)}`)
  const out = new Array<NormalRecord>(inputs.length)
  let i = 0
  try {
    for (; i < inputs.length; i++) out[i] = normalizeRecord(inputs[i] as AppendInput, now)
  } catch (err) {
    throw err instanceof WalError ? atRecord(err, i, 'record # of the batch') : err
  }
  return out
}

export function bytesOf (v: Bytes, what: string): Buffer {
  return toBuffer(v, what)
}
