// Shared helpers for the benchmarks: clocks, deterministic payloads, latency samples, temp dirs.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'

export const BENCH = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
export const ROOT = path.dirname(BENCH)
export const TMP = path.join(BENCH, 'tmp')
export const RESULTS = path.join(BENCH, 'results')
export const RECORD = 64
/**
 * Durable appends each system makes when its store is opened for a write scenario, before timing.
 * Steady state, not start-up: over the first ~2,000 appends in a process, V8 compiles the append
 * path on a background thread, and on this 2-core VM that thread holds up the kernel worker that
 * issues each fdatasync's cache flush (traced: the data write done in ~60 µs, the flush issued
 * 0.4-2.6 ms later). 300 appends left that in the serial scenario's p99.9.
 */
export const WARM_APPENDS = 3000
export const KiB = 1024
export const MiB = 1024 * 1024
/** The scenarios of bench/run.js, in run order; bench/profile.js profiles one of them. */
export const SCENARIOS = ['serial', 'batch', 'concurrent', 'payload', 'read', 'replay', 'streams', 'open']

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
export const now = () => performance.now()
/** The middle value; of an even count, the mean of the two middle ones (not the lower, which made a median of two runs their minimum). */
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}
export const progress = (msg) => process.stderr.write(`  ${msg}\n`)

/** Deterministic random bytes (xorshift), so every run and every system writes the same data. */
export function randomBlock (n, seed = 12345) {
  const b = Buffer.allocUnsafe(n)
  let x = seed >>> 0
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
    b[i] = x & 0xff
  }
  return b
}
const SOURCE = randomBlock(MiB)

/** Record i of `size` bytes: a view into a 1 MiB random block (no allocation per record). */
export function payload (i, size = RECORD) {
  const slots = Math.floor(SOURCE.length / size)
  const at = (i % slots) * size
  return SOURCE.subarray(at, at + size)
}

/** `count` payloads starting at record `from`. */
export function payloads (from, count, size = RECORD) {
  const out = new Array(count)
  for (let i = 0; i < count; i++) out[i] = payload(from + i, size)
  return out
}

/** Growable latency sample, in microseconds. */
export class Lat {
  constructor (cap = 1 << 16) { this.a = new Float64Array(cap); this.n = 0; this.sorted = false }
  push (us) {
    if (this.n === this.a.length) { const b = new Float64Array(this.a.length * 2); b.set(this.a); this.a = b }
    this.a[this.n++] = us
    this.sorted = false
  }

  pct (p) {
    if (this.n === 0) return NaN
    const s = this.a.subarray(0, this.n)
    if (!this.sorted) { s.sort(); this.sorted = true }
    return s[Math.min(this.n - 1, Math.max(0, Math.ceil(p * this.n) - 1))]
  }
}

const FS_TYPES = { 0xef53: 'ext4', 0x01021994: 'tmpfs', 0x858458f6: 'ramfs', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x794c7630: 'overlayfs', 0x6969: 'nfs', 0x2fc12fc1: 'zfs', 0xf2f52010: 'f2fs' }
export function fsType (dir) {
  const t = Number(fs.statfsSync(dir).type)
  return FS_TYPES[t] ?? `0x${t.toString(16)}`
}

/** Refuses to benchmark where fdatasync is free. */
export function checkDisk (dir = TMP) {
  fs.mkdirSync(dir, { recursive: true })
  const kind = fsType(dir)
  if (kind === 'tmpfs' || kind === 'ramfs') {
    console.error(`refusing to benchmark on ${kind} (${dir}): fdatasync would be free`)
    process.exit(1)
  }
  return kind
}

export function dirBytes (dir) {
  let n = 0
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    n += e.isDirectory() ? dirBytes(p) : fs.statSync(p).size
  }
  return n
}

/** This process's own directory under bench/tmp: concurrent bench runs never touch each other's files. */
export const WORK = path.join(TMP, `run-${process.pid}`)

/** Removes this process's directory (and bench/tmp when nothing else is left in it). */
export function cleanupWork () {
  try { fs.rmSync(WORK, { recursive: true, force: true }) } catch {}
  try { fs.rmdirSync(TMP) } catch {}
}

let dirSeq = 0
export function freshDir (name) {
  const d = path.join(WORK, `${name}-${dirSeq++}`)
  fs.rmSync(d, { recursive: true, force: true })
  fs.mkdirSync(d, { recursive: true })
  return d
}

export const removeDir = (dir) => fs.rmSync(dir, { recursive: true, force: true })

/** Version of an installed package (reads its package.json directly: some packages do not export it). */
export function pkgVersion (name) {
  try { return JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version } catch { return null }
}

/** 8-byte big-endian key, so keys sort in insertion order. */
export function u64Key (i) {
  const b = Buffer.allocUnsafe(8)
  b.writeUInt32BE(Math.floor(i / 0x100000000), 0)
  b.writeUInt32BE(i >>> 0, 4)
  return b
}
