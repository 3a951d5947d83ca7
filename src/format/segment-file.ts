/**
 * Segment file: `<baseOffset, 20 digits>.log`.
 *
 *   [0, 64)   header: magic "WALSEG\0\x01" | u32 partition (0xffffffff: meta log) | u32 reserved
 *             | u64 baseOffset | u64 createdAt (ms) | where the previous segment ended when this
 *             one was started: u64 nextOffset | u64 dataEnd | u32 batchCount | u32 chained CRC
 *             (all zero: first segment, or written before this field existed) | u32 zero
 *             | u32 CRC32C of bytes [0, 60) at 60. A previous segment is sealed after the next
 *             one exists; until then only this record proves that none of its data was lost.
 *   [64, ..)  record batches back to back (batch.ts). The first batch carries every checkpoint.
 *   then      zeros up to the preallocated size (an open segment), or
 *   a seal    a batch with attribute bit 1 and no records, as the file's last 68 bytes (a sealed
 *             segment). Its baseOffset is the segment's next offset, its timestamps the segment's
 *             min and max, and its 24-byte body: u32 batchCount | u32 chained CRC | u64 dataEnd
 *             | u64 reserved. The chained CRC is CRC32C over every batch's CRC field in order,
 *             so a full scan can prove that the sealed content is exactly what was written.
 *
 * Index files, written when a segment is sealed and rebuilt from the segment whenever missing,
 * damaged or stale (they are never fsynced: they can always be derived):
 *   `<base>.index`      magic "WALIDX\0\x01" | u32 count | u32 CRC32C of [16, end) | u64 dataEnd
 *                       | u64 nextOffset | entries: u32 offset - base | u32 batch position
 *   `<base>.timeindex`  magic "WALTIX\0\x01" | same header | entries: i64 max timestamp so far | u32 offset - base
 */
import { crc32c } from './crc.js'
import { ATTR_SEAL, BATCH_HEADER_BYTES, BATCH_MAGIC, readU64, writeU64 } from './batch.js'

export const SEGMENT_HEADER_BYTES = 64
export const SEAL_BYTES = BATCH_HEADER_BYTES + 24
const SEGMENT_MAGIC = Buffer.from('WALSEG\0\x01', 'latin1')
const INDEX_MAGIC = Buffer.from('WALIDX\0\x01', 'latin1')
const TIME_INDEX_MAGIC = Buffer.from('WALTIX\0\x01', 'latin1')
const INDEX_HEADER_BYTES = 32

export function segmentFileName (base: number): string {
  return String(base).padStart(20, '0') + '.log'
}

export function parseSegmentFileName (name: string): number | null {
  const m = /^(\d{20})\.log$/.exec(name)
  if (m === null) return null
  const n = Number(m[1])
  return Number.isSafeInteger(n) ? n : null
}

/** Where a segment's data ends: what its seal, or the next segment's header, records of it. */
export interface SegmentEnd { nextOffset: number, dataEnd: number, batchCount: number, chainCrc: number }

export function encodeSegmentHeader (partition: number, base: number, createdAt: number, prev: SegmentEnd | null = null): Buffer {
  const buf = Buffer.alloc(SEGMENT_HEADER_BYTES)
  SEGMENT_MAGIC.copy(buf, 0)
  buf.writeUInt32BE(partition >>> 0, 8)
  writeU64(buf, base, 16)
  writeU64(buf, createdAt, 24)
  if (prev !== null) {
    writeU64(buf, prev.nextOffset, 32)
    writeU64(buf, prev.dataEnd, 40)
    buf.writeUInt32BE(prev.batchCount >>> 0, 48)
    buf.writeUInt32BE(prev.chainCrc >>> 0, 52)
  }
  buf.writeUInt32BE(crc32c(buf, 0, 60), 60)
  return buf
}

export interface SegmentHeader { partition: number, base: number, createdAt: number, prev: SegmentEnd | null }

export function decodeSegmentHeader (buf: Buffer): SegmentHeader | null {
  if (buf.length < SEGMENT_HEADER_BYTES) return null
  if (!buf.subarray(0, 8).equals(SEGMENT_MAGIC)) return null
  if (buf.readUInt32BE(60) !== crc32c(buf, 0, 60)) return null
  // A real data end is never below the header, so zero there means "not recorded".
  const dataEnd = readU64(buf, 40)
  const prev = dataEnd < SEGMENT_HEADER_BYTES ? null : { nextOffset: readU64(buf, 32), dataEnd, batchCount: buf.readUInt32BE(48), chainCrc: buf.readUInt32BE(52) }
  return { partition: buf.readUInt32BE(8), base: readU64(buf, 16), createdAt: readU64(buf, 24), prev }
}

export interface SealInfo {
  nextOffset: number
  minTimestamp: number
  maxTimestamp: number
  batchCount: number
  chainCrc: number
  dataEnd: number
}

export function encodeSeal (s: SealInfo): Buffer {
  const buf = Buffer.alloc(SEAL_BYTES)
  buf.writeUInt32BE(SEAL_BYTES, 0)
  buf[8] = BATCH_MAGIC
  buf[9] = ATTR_SEAL
  writeU64(buf, s.nextOffset, 12)
  writeU64(buf, s.minTimestamp, 28)
  writeU64(buf, s.maxTimestamp, 36)
  buf.writeUInt32BE(s.batchCount, 44)
  buf.writeUInt32BE(s.chainCrc, 48)
  writeU64(buf, s.dataEnd, 52)
  buf.writeUInt32BE(crc32c(buf, 8, SEAL_BYTES), 4)
  return buf
}

/** `buf` holds the seal batch at `pos`; its checksum was verified. */
export function decodeSeal (buf: Buffer, pos: number): SealInfo {
  return {
    nextOffset: readU64(buf, pos + 12),
    minTimestamp: readU64(buf, pos + 28),
    maxTimestamp: readU64(buf, pos + 36),
    batchCount: buf.readUInt32BE(pos + 44),
    chainCrc: buf.readUInt32BE(pos + 48),
    dataEnd: readU64(buf, pos + 52)
  }
}

export function chainCrc (chain: number, buf: Buffer, batchPos: number): number {
  return crc32c(buf, batchPos + 4, batchPos + 8, chain)
}

/** Sparse offset index and time index of one segment, as parallel arrays. */
export interface SegmentIndex {
  offsets: number[] // relative offset of an indexed batch's base
  positions: number[] // that batch's position
  times: number[] // time index: max timestamp seen up to and including the batch
  timeOffsets: number[] // relative offset of that batch's base
}

export function emptyIndex (): SegmentIndex {
  return { offsets: [], positions: [], times: [], timeOffsets: [] }
}

function encodeIndexFile (magic: Buffer, entries: number, entryBytes: number, dataEnd: number, nextOffset: number, fill: (buf: Buffer, pos: number, i: number) => void): Buffer {
  const buf = Buffer.alloc(INDEX_HEADER_BYTES + entries * entryBytes)
  magic.copy(buf, 0)
  buf.writeUInt32BE(entries, 8)
  writeU64(buf, dataEnd, 16)
  writeU64(buf, nextOffset, 24)
  for (let i = 0; i < entries; i++) fill(buf, INDEX_HEADER_BYTES + i * entryBytes, i)
  buf.writeUInt32BE(crc32c(buf, 16, buf.length), 12)
  return buf
}

export function encodeOffsetIndex (idx: SegmentIndex, dataEnd: number, nextOffset: number): Buffer {
  return encodeIndexFile(INDEX_MAGIC, idx.offsets.length, 8, dataEnd, nextOffset, (buf, pos, i) => {
    buf.writeUInt32BE(idx.offsets[i], pos)
    buf.writeUInt32BE(idx.positions[i], pos + 4)
  })
}

export function encodeTimeIndex (idx: SegmentIndex, dataEnd: number, nextOffset: number): Buffer {
  return encodeIndexFile(TIME_INDEX_MAGIC, idx.times.length, 12, dataEnd, nextOffset, (buf, pos, i) => {
    writeU64(buf, idx.times[i], pos)
    buf.writeUInt32BE(idx.timeOffsets[i], pos + 8)
  })
}

/**
 * Decodes both index files into `idx`; returns false when either does not belong to a segment
 * with this dataEnd and nextOffset, or fails its checksum (the caller then rebuilds).
 */
export function decodeIndexFiles (offsetFile: Buffer | null, timeFile: Buffer | null, dataEnd: number, nextOffset: number, idx: SegmentIndex): boolean {
  const check = (buf: Buffer | null, magic: Buffer, entryBytes: number): number => {
    if (buf === null || buf.length < INDEX_HEADER_BYTES || !buf.subarray(0, 8).equals(magic)) return -1
    const n = buf.readUInt32BE(8)
    if (buf.length !== INDEX_HEADER_BYTES + n * entryBytes) return -1
    if (buf.readUInt32BE(12) !== crc32c(buf, 16, buf.length)) return -1
    if (readU64(buf, 16) !== dataEnd || readU64(buf, 24) !== nextOffset) return -1
    return n
  }
  const n = check(offsetFile, INDEX_MAGIC, 8)
  const t = check(timeFile, TIME_INDEX_MAGIC, 12)
  if (n < 0 || t < 0 || offsetFile === null || timeFile === null) return false
  for (let i = 0; i < n; i++) {
    const pos = INDEX_HEADER_BYTES + i * 8
    idx.offsets.push(offsetFile.readUInt32BE(pos))
    idx.positions.push(offsetFile.readUInt32BE(pos + 4))
  }
  for (let i = 0; i < t; i++) {
    const pos = INDEX_HEADER_BYTES + i * 12
    idx.times.push(readU64(timeFile, pos))
    idx.timeOffsets.push(timeFile.readUInt32BE(pos + 8))
  }
  return true
}
