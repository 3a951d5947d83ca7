/**
 * kafkajs's record encoder, rewritten to produce the same bytes for less.
 *
 * kafkajs 2.2 encodes each record of a produce request with a fresh `Encoder` (a zero-filled
 * 512-byte buffer), another one per header, a `Buffer.from([...])` per varint and `Long`
 * arithmetic for the timestamp delta, then copies it all into the batch. That was most of the
 * CPU of a replay (bench/kafka.js), whose records all carry a provenance header. Here a record's
 * exact size is computed first and the record is written into one buffer from Node's pool.
 *
 * The patch replaces the module kafkajs's produce request takes its `Record` from (v3, which v4
 * to v7 build on), for every kafkajs copy loaded in the process, as the decoder patch does: other
 * kafkajs users in the process send the same bytes, faster. Anything outside the shapes handled
 * here (a key that is neither string nor Buffer, a header value kafkajs would reject, an
 * out-of-range delta, an Array subclass other than ours) goes to kafkajs's own encoder, errors
 * included. test/kafka-port.test.js compares the two byte for byte.
 */
import { createRequire } from 'node:module'
import path from 'node:path'
import type { WalHeader } from '../../src/index.js'
import { provenanceHeader, type Provenance } from './provenance.js'

const require = createRequire(import.meta.url)
const PATCHED = Symbol.for('writeahead.kafka.recordEncoderPatched')

/** A null header value: kafkajs sizes a header with Buffer.byteLength(value) before checking for null. */
function nullHeader (key: string): { key: string, value: Buffer | null } {
  let reads = 0
  return {
    key,
    get value () { return reads++ === 0 ? Buffer.alloc(0) : null }
  }
}

/**
 * kafkajs's record encoder calls `headers[key].map(...)` for array values and encodes what comes
 * back: this array's `map` ignores the callback and yields the ordered list itself, with the
 * provenance header last when there is one. A class rather than Object.defineProperty on each
 * record's array, which cost more than encoding the header. The patched encoder reads the list
 * directly (`list()`), null values included.
 */
class OrderedHeaderList extends Array<unknown> {
  constructor (private readonly headers: WalHeader[], private readonly provenance: Provenance | undefined) { super() }
  list (): WalHeader[] {
    const p = this.provenance
    return p === undefined ? this.headers : [...this.headers, provenanceHeader(p.partition, p.offset, p.source)]
  }

  // kafkajs reads { key, value } from each item, which a WalHeader already is (unless its value is null).
  override map<U> (): U[] {
    const h = this.list()
    for (let i = 0; i < h.length; i++) if (h[i].value === null) return h.map((x) => x.value === null ? nullHeader(x.key) : x) as U[]
    return h as U[]
  }
}

/** Headers in the shape kafkajs's record encoder turns into exactly this ordered list (then the provenance header, if given). */
export function kafkajsHeaders (headers: WalHeader[], provenance?: Provenance): Record<string, unknown> {
  if (headers.length === 0 && provenance === undefined) return {}
  return { '': new OrderedHeaderList(headers, provenance) }
}

// ---------------------------------------------------------------------------
// The encoding (Kafka's Record v0 in a v2 record batch):
//
//   length varint | attributes int8 (0) | timestampDelta varlong | offsetDelta varint
//   key varint-length bytes (-1: null) | value likewise | header count varint
//   per header: key varint-length utf8 | value varint-length bytes (-1: null)
//
// varint and varlong are zigzag LEB128, as kafkajs writes them.

interface RecordInput {
  offsetDelta?: unknown
  timestampDelta?: unknown
  key?: unknown
  value?: unknown
  headers?: unknown
}

/** What kafkajs's produce request and batch use of an encoder: `buf`, `offset`, and the prototype's `buffer`. */
interface EncoderLike { buf: Buffer, offset: number }

/** Lengths and deltas kafkajs's 32-bit zigzag varint writes without surprises. */
const VARINT_LIMIT = 2 ** 28
/** Timestamp deltas whose zigzag form is an exact number. */
const DELTA_LIMIT = 2 ** 52

function uvarintSize (n: number): number {
  let size = 1
  while (n >= 128) { n = Math.floor(n / 128); size++ }
  return size
}

function writeUVarint (buf: Buffer, pos: number, n: number): number {
  while (n >= 128) { buf[pos++] = (n % 128) | 128; n = Math.floor(n / 128) }
  buf[pos++] = n
  return pos
}

const zigzag = (n: number): number => n >= 0 ? n * 2 : -n * 2 - 1

/** The byte length a key or value is written with; -1 for null; undefined if kafkajs's own encoder must handle it. */
function bytesLength (v: unknown): number | undefined {
  if (v === null || v === undefined) return -1
  if (typeof v === 'string') return Buffer.byteLength(v)
  if (Buffer.isBuffer(v)) return v.length
  return undefined
}

/** Writes at most `len` bytes of `v`: a value that changed since it was sized leaves the record short (see encodeRecord). */
function writeBytes (buf: Buffer, pos: number, v: unknown, len: number): number {
  pos = writeUVarint(buf, pos, zigzag(len))
  if (len <= 0) return pos
  return pos + (typeof v === 'string' ? buf.write(v, pos, len, 'utf8') : (v as Buffer).copy(buf, pos, 0, len))
}

/**
 * The header list kafkajs would encode for `headers`, or undefined where its own encoder must
 * run: what `Object.keys(headers).flatMap(...)` of kafkajs's record encoder builds.
 */
function headerList (headers: unknown): Array<{ key: string, value: unknown }> | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined
  const keys = Object.keys(headers)
  if (keys.length === 0) return []
  const h = headers as Record<string, unknown>
  if (keys.length === 1 && h[keys[0]] instanceof OrderedHeaderList) return (h[keys[0]] as OrderedHeaderList).list()
  const out: Array<{ key: string, value: unknown }> = []
  // Null and undefined values stay with kafkajs, which throws on them (and skips holes).
  for (const key of keys) {
    const v = h[key]
    if (!Array.isArray(v)) {
      if (v === null || v === undefined) return undefined
      out.push({ key, value: v })
      continue
    }
    if (Object.getPrototypeOf(v) !== Array.prototype || v.map !== Array.prototype.map) return undefined
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i]
      if (x === null || x === undefined) return undefined
      out.push({ key, value: x })
    }
  }
  return out
}

/** The record's bytes, or undefined if kafkajs's own encoder must encode it. */
export function encodeRecord (input: RecordInput): Buffer | undefined {
  // kafkajs's defaults apply to undefined only.
  const offsetDelta = input.offsetDelta === undefined ? 0 : input.offsetDelta
  const timestampDelta = input.timestampDelta === undefined ? 0 : input.timestampDelta
  if (typeof offsetDelta !== 'number' || !Number.isInteger(offsetDelta) || offsetDelta < 0 || offsetDelta >= VARINT_LIMIT) return undefined
  // Zigzag doubles it: beyond 2^52 it would no longer be exact as a number.
  if (typeof timestampDelta !== 'number' || !Number.isInteger(timestampDelta) || Math.abs(timestampDelta) >= DELTA_LIMIT) return undefined
  const headers = headerList(input.headers === undefined ? {} : input.headers)
  if (headers === undefined) return undefined
  const key = input.key
  const value = input.value
  const keyLen = bytesLength(key)
  const valueLen = bytesLength(value)
  if (keyLen === undefined || valueLen === undefined) return undefined
  // Null header values come only from an OrderedHeaderList here (see headerList).
  const lens = new Array<number>(headers.length * 2)
  let headersSize = uvarintSize(zigzag(headers.length))
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]
    if (typeof h.key !== 'string') return undefined
    const k = Buffer.byteLength(h.key)
    const hv = h.value
    const v = hv === null ? -1 : typeof hv === 'string' ? Buffer.byteLength(hv) : Buffer.isBuffer(hv) ? hv.length : undefined
    if (v === undefined) return undefined
    lens[2 * i] = k
    lens[2 * i + 1] = v
    headersSize += uvarintSize(zigzag(k)) + k + uvarintSize(zigzag(v)) + Math.max(v, 0)
  }
  const body = 1 + uvarintSize(zigzag(timestampDelta)) + uvarintSize(zigzag(offsetDelta)) +
    uvarintSize(zigzag(keyLen)) + Math.max(keyLen, 0) + uvarintSize(zigzag(valueLen)) + Math.max(valueLen, 0) + headersSize
  if (body >= VARINT_LIMIT) return undefined
  const buf = Buffer.allocUnsafe(uvarintSize(zigzag(body)) + body)
  let pos = writeUVarint(buf, 0, zigzag(body))
  buf[pos++] = 0
  pos = writeUVarint(buf, pos, zigzag(timestampDelta))
  pos = writeUVarint(buf, pos, zigzag(offsetDelta))
  pos = writeBytes(buf, pos, key, keyLen)
  pos = writeBytes(buf, pos, value, valueLen)
  pos = writeUVarint(buf, pos, zigzag(headers.length))
  for (let i = 0; i < headers.length; i++) {
    pos = writeBytes(buf, pos, headers[i].key, lens[2 * i])
    pos = writeBytes(buf, pos, headers[i].value, lens[2 * i + 1])
  }
  // Sizes taken from objects that changed while being read (getters) would leave pool memory in
  // the record: kafkajs's producer hands over plain copies, but a direct caller might not.
  return pos === buf.length ? buf : undefined
}

type RecordEncoder = ((input: RecordInput) => EncoderLike) & { [PATCHED]?: true }

function isKafkajs22 (src: string): boolean {
  try {
    const pkg = require(path.join(src, '..', 'package.json')) as { name?: string, version?: string }
    return pkg.name === 'kafkajs' && /^2\.2\./.test(pkg.version ?? '')
  } catch {
    return false
  }
}

/** Set to `kafkajs` to keep kafkajs's own record encoder (the patch only saves CPU). */
export const ENCODER_ENV = 'WRITEAHEAD_KAFKAJS_ENCODER'

/**
 * Patches every kafkajs copy loaded in this process (and ours): returns how many are patched.
 * Idempotent. A produce request module that already took kafkajs's encoder is unloaded, so that
 * kafkajs loads it anew (it requires it for each request) with this one.
 */
export function patchKafkajsEncoders (): number {
  if (process.env[ENCODER_ENV] === 'kafkajs') return 0
  const dirs = new Set<string>()
  const suffix = path.sep + path.join('kafkajs', 'src', 'protocol', 'encoder.js')
  try { dirs.add(path.dirname(path.dirname(require.resolve('kafkajs/src/protocol/encoder.js')))) } catch {}
  for (const f of Object.keys(require.cache)) if (f.endsWith(suffix)) dirs.add(path.dirname(path.dirname(f)))
  let patched = 0
  for (const src of dirs) {
    // The encoding rules here are kafkajs 2.2's (1.x, for one, rejects array header values).
    if (!isKafkajs22(src)) continue
    const file = path.join(src, 'protocol', 'recordBatch', 'record', 'v0', 'index.js')
    let original: RecordEncoder
    let Encoder: { prototype: object }
    try {
      original = require(file) as RecordEncoder
      Encoder = require(path.join(src, 'protocol', 'encoder.js')) as { prototype: object }
    } catch { continue }
    const mod = require.cache[file]
    if (original[PATCHED] === true) { patched++; continue }
    if (mod === undefined || typeof original !== 'function') continue
    const proto = Encoder.prototype
    const fast: RecordEncoder = (input) => {
      const buf = encodeRecord(input)
      if (buf === undefined) return original(input)
      // An Encoder without the constructor's zero-filled buffer: kafkajs checks `buf` and reads `buffer`.
      const e = Object.create(proto) as EncoderLike
      e.buf = buf
      e.offset = buf.length
      return e
    }
    fast[PATCHED] = true
    mod.exports = fast
    for (const v of [3, 4, 5, 6, 7]) delete require.cache[path.join(src, 'protocol', 'requests', 'produce', `v${v}`, 'request.js')]
    patched++
  }
  return patched
}
