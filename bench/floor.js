// The physical floor: what this disk does with raw fs.writeSync + fs.fdatasyncSync on a pre-written
// file (no allocation, no metadata update), and with plain reads of a length-framed file.
// Every writeahead and peer number is compared with these.
import fs from 'node:fs'
import path from 'node:path'
import { Lat, MiB, RECORD, freshDir, now, payload, payloads } from './lib/common.js'

const FILE_BYTES = 64 * MiB

export const floorInfo = {
  key: 'floor',
  label: 'floor (fs.writeSync + fdatasyncSync)',
  short: 'floor',
  durable: true,
  version: process.version,
  note: 'raw write + fdatasync on a pre-written file; reads: pread / 1 MiB sequential reads of a length-framed file'
}

let fd = -1
let dir = null

/** The pre-written, fsynced file all write floors overwrite in place. */
function floorFd () {
  if (fd >= 0) return fd
  dir = freshDir('floor')
  fd = fs.openSync(path.join(dir, 'floor.dat'), 'w+')
  const z = Buffer.alloc(MiB)
  for (let pos = 0; pos < FILE_BYTES; pos += MiB) fs.writeSync(fd, z, 0, MiB, pos)
  fs.fsyncSync(fd)
  return fd
}

export function closeFloor () {
  if (fd >= 0) { try { fs.closeSync(fd) } catch {} fd = -1 }
  if (dir !== null) { fs.rmSync(dir, { recursive: true, force: true }); dir = null }
}

/** One record per write + fdatasync. */
export function floorSerial (ms) {
  const f = floorFd()
  const lat = new Lat()
  let pos = 0
  let n = 0
  const start = now()
  const end = start + ms
  let t = start
  while (t < end) {
    fs.writeSync(f, payload(n), 0, RECORD, pos)
    fs.fdatasyncSync(f)
    const t2 = now()
    lat.push((t2 - t) * 1000)
    t = t2
    n++
    pos += RECORD
    if (pos + RECORD > FILE_BYTES) pos = 0
  }
  const secs = (t - start) / 1000
  return { rate: n / secs, p50: lat.pct(0.5), p99: lat.pct(0.99), p999: lat.pct(0.999) }
}

/**
 * `count` records of `size` bytes per write + fdatasync. Each iteration frames (u32 length + payload)
 * and copies every record, as any log must; the latency is per sync. The records come from four
 * batches built beforehand, as run.js's batchRun hands the systems theirs: a payload() view made
 * per record in the loop cost the floor ~45 ns a record the systems never pay (16,384 a sync: the
 * floor measured ~40% slower), which flattered every ratio to it. (concurrentRun's writers do make
 * one view per append: ~45 ns of the ≥ 500 ns an append costs them.)
 */
export function floorBatch (count, size, ms, { fresh = false } = {}) {
  // `fresh`: appended to a new file, as a log writes (see bench/fresh-floor.js), not rewritten in
  // place in the one pre-written file that this disk's cache keeps hot.
  const freshDirPath = fresh ? freshDir('floor-fresh') : null
  const f = fresh ? fs.openSync(path.join(freshDirPath, 'fresh.dat'), 'w+') : floorFd()
  try {
    return frameAndSync(f, count, size, ms, fresh)
  } finally {
    if (fresh) { fs.closeSync(f); fs.rmSync(freshDirPath, { recursive: true, force: true }) }
  }
}

function frameAndSync (f, count, size, ms, append) {
  const frame = size + 4
  const buf = Buffer.allocUnsafe(count * frame)
  const batches = [0, 1, 2, 3].map((j) => payloads(j * count, count, size))
  const lat = new Lat()
  let pos = 0
  let n = 0
  let k = 0
  const start = now()
  const end = start + ms
  let t = start
  while (t < end) {
    const batch = batches[k++ & 3]
    let off = 0
    for (let i = 0; i < count; i++) {
      buf.writeUInt32LE(size, off)
      batch[i].copy(buf, off + 4)
      off += frame
    }
    if (!append && pos + off > FILE_BYTES) pos = 0
    fs.writeSync(f, buf, 0, off, pos)
    fs.fdatasyncSync(f)
    pos += off
    n += count
    const t2 = now()
    lat.push((t2 - t) * 1000)
    t = t2
  }
  const secs = (t - start) / 1000
  return { rate: n / secs, mbs: n * size / 1e6 / secs, p50: lat.pct(0.5), p99: lat.pct(0.99), p999: lat.pct(0.999) }
}

/** A length-framed file of `records` records (u32 length + payload), for the read floors. */
export function buildFramed (records) {
  const d = freshDir('floor-read')
  const file = path.join(d, 'framed.dat')
  const f = fs.openSync(file, 'w')
  const chunk = Buffer.allocUnsafe(16384 * (RECORD + 4))
  for (let done = 0; done < records;) {
    const k = Math.min(16384, records - done)
    let off = 0
    for (let i = 0; i < k; i++) { chunk.writeUInt32LE(RECORD, off); payload(done + i).copy(chunk, off + 4); off += RECORD + 4 }
    fs.writeSync(f, chunk, 0, off)
    done += k
  }
  fs.fdatasyncSync(f)
  fs.closeSync(f)
  return { dir: d, file, records }
}

/** Random point reads: one pread of one record at a known position. */
export function floorPointRead (framed, ms) {
  const f = fs.openSync(framed.file, 'r')
  const buf = Buffer.allocUnsafe(RECORD + 4)
  let x = 987654321
  let n = 0
  const start = now()
  const end = start + ms
  let t = start
  try {
    while (t < end) {
      for (let j = 0; j < 256; j++) {
        x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
        const i = x % framed.records
        fs.readSync(f, buf, 0, RECORD + 4, i * (RECORD + 4))
        if (buf.readUInt32LE(0) !== RECORD) throw new Error('bad frame')
      }
      n += 256
      t = now()
    }
  } finally { fs.closeSync(f) }
  return { rate: n / ((t - start) / 1000) }
}

/** Sequential replay: 1 MiB reads, walking the frames and touching every record. */
export function floorReplay (framed) {
  const f = fs.openSync(framed.file, 'r')
  const buf = Buffer.allocUnsafe(MiB)
  let n = 0
  let bytes = 0
  let carry = 0
  const t0 = now()
  try {
    for (;;) {
      const got = fs.readSync(f, buf, carry, MiB - carry, null)
      const have = carry + got
      let off = 0
      while (off + 4 <= have) {
        const len = buf.readUInt32LE(off)
        if (off + 4 + len > have) break
        const rec = buf.subarray(off + 4, off + 4 + len)
        bytes += rec.length
        n++
        off += 4 + len
      }
      if (got === 0) break
      carry = have - off
      buf.copy(buf, 0, off, have)
    }
  } finally { fs.closeSync(f) }
  const secs = (now() - t0) / 1000
  if (n !== framed.records) throw new Error(`floor replay read ${n} records, expected ${framed.records}`)
  return { rate: n / secs, mbs: bytes / 1e6 / secs }
}
