/**
 * What the directory says about a log, read without the engine (which exposes no segment list
 * yet): partitions, segment files, their headers and seals, and each partition's durable mark.
 * Everything here follows the on-disk format in the README and is checksummed before it is
 * believed; files may vanish under us (rotation, retention) and are then skipped.
 */
import fs from 'node:fs'
import path from 'node:path'
import { crc32c } from '@node-rs/crc32'
import { WalError } from '../index.js'

const HEADER_BYTES = 64
const SEAL_BYTES = 68
const SEGMENT_MAGIC = Buffer.from('WALSEG\0\x01', 'latin1')
const BATCH_MAGIC = 0x57
const ATTR_SEAL = 0x02
const HEAD_MAGIC = 0x57484431

export interface SegmentFileInfo {
  partition: number
  file: string
  path: string
  /** First offset the segment may hold (from its name). */
  base: number
  /** Bytes on disk, preallocated space of an open segment included. */
  fileBytes: number
  /** Whether the file ends with a valid seal. */
  sealed: boolean
  /** From a valid header. */
  createdAt: number | null
  /** From a valid seal: one past the last offset, where batch data ends, and the time range. */
  nextOffset: number | null
  dataBytes: number | null
  minTimestamp: number | null
  maxTimestamp: number | null
}

export interface DurableMark { segmentBase: number, position: number, nextOffset: number }

const u64 = (buf: Buffer, at: number): number => Number(buf.readBigUInt64BE(at))
const i64 = (buf: Buffer, at: number): number => Number(buf.readBigInt64BE(at))

/** Throws NOT_A_WAL unless `dir` holds a log (its meta directory). */
export function requireLog (dir: string): void {
  let st: fs.Stats
  try {
    st = fs.statSync(dir)
  } catch {
    throw new WalError('NOT_A_WAL', `${dir} does not exist`, { dir })
  }
  if (!st.isDirectory()) throw new WalError('NOT_A_WAL', `${dir} is not a directory`, { dir })
  if (!fs.existsSync(path.join(dir, 'meta'))) throw new WalError('NOT_A_WAL', `${dir} holds no write-ahead log`, { dir })
}

function readAt (fd: number, length: number, position: number): Buffer {
  const buf = Buffer.alloc(length)
  let n = 0
  while (n < length) {
    const got = fs.readSync(fd, buf, n, length - n, position + n)
    if (got === 0) break
    n += got
  }
  return n === length ? buf : buf.subarray(0, n)
}

/** Segment files of one partition, oldest first. */
export function listSegments (dir: string, p: number): SegmentFileInfo[] {
  const pdir = path.join(dir, `partition-${p}`)
  let names: string[]
  try { names = fs.readdirSync(pdir) } catch { return [] }
  const out: SegmentFileInfo[] = []
  for (const file of names.filter((n) => /^\d{20}\.log$/.test(n)).sort()) {
    const info = readSegment(pdir, file, p)
    if (info !== null) out.push(info)
  }
  return out
}

function readSegment (pdir: string, file: string, partition: number): SegmentFileInfo | null {
  const full = path.join(pdir, file)
  let fd: number
  try { fd = fs.openSync(full, 'r') } catch { return null }
  try {
    const fileBytes = fs.fstatSync(fd).size
    const info: SegmentFileInfo = {
      partition, file, path: full, base: Number(file.slice(0, 20)), fileBytes, sealed: false,
      createdAt: null, nextOffset: null, dataBytes: null, minTimestamp: null, maxTimestamp: null
    }
    const h = readAt(fd, HEADER_BYTES, 0)
    if (h.length === HEADER_BYTES && h.subarray(0, 8).equals(SEGMENT_MAGIC) && h.readUInt32BE(60) === crc32c(h.subarray(0, 60)) >>> 0) {
      info.createdAt = u64(h, 24)
    }
    if (fileBytes >= HEADER_BYTES + SEAL_BYTES) {
      const s = readAt(fd, SEAL_BYTES, fileBytes - SEAL_BYTES)
      if (s.length === SEAL_BYTES && s.readUInt32BE(0) === SEAL_BYTES && s[8] === BATCH_MAGIC && (s[9] & ATTR_SEAL) !== 0 &&
          s.readUInt32BE(4) === crc32c(s.subarray(8)) >>> 0) {
        info.sealed = true
        info.nextOffset = u64(s, 12)
        info.dataBytes = u64(s, 52)
        if (info.nextOffset > info.base) {
          info.minTimestamp = i64(s, 28)
          info.maxTimestamp = i64(s, 36)
        }
      }
    }
    return info
  } catch {
    return null
  } finally {
    fs.closeSync(fd)
  }
}

/** The visible slot of a partition's `durable` file, or null when missing or damaged. */
export function readDurable (dir: string, p: number): DurableMark | null {
  let buf: Buffer
  try { buf = fs.readFileSync(path.join(dir, `partition-${p}`, 'durable')) } catch { return null }
  if (buf.length < 32 || buf.readUInt32BE(0) !== HEAD_MAGIC || buf.readUInt32BE(4) !== crc32c(buf.subarray(8, 32)) >>> 0) return null
  return { segmentBase: u64(buf, 8), position: u64(buf, 16), nextOffset: u64(buf, 24) }
}

/**
 * The offsets a segment holds, as far as the files tell: the seal's next offset, else the next
 * segment's base, else the durable mark.
 */
export function segmentEnd (segs: SegmentFileInfo[], i: number, mark: DurableMark | null): number | null {
  const s = segs[i]
  if (s.nextOffset !== null) return s.nextOffset
  if (i + 1 < segs.length) return segs[i + 1].base
  if (mark !== null && mark.segmentBase === s.base) return mark.nextOffset
  return null
}
