#!/usr/bin/env node
// Core benchmark for writeahead against the raw write+fdatasync floor of this disk.
//
//   npm run bench                      full run (< 5 min on 2 cores)
//   node bench/run.js --quick          smaller sizes, fewer/shorter runs (< 1 min)
//   node bench/run.js serial batch     only some scenarios: floor serial batch concurrent read iterate open
//
// Everything runs on the disk under bench/tmp (tmpfs/ramfs is refused), which is removed at the end.
// Each floor (raw write + fdatasync) run is measured right before the writeahead run it is compared
// with, and "ratio" is the median of those per-run ratios, so disk drift between runs cancels out.
// Results: a table on stdout, JSON in bench/results/core-<ISO date>.json and bench/results/latest.json.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { WriteAhead } from '../dist/src/index.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const TMP = path.join(HERE, 'tmp')
const RESULTS = path.join(HERE, 'results')
const RECORD = 64
const MiB = 1024 * 1024

// ---------------------------------------------------------------- helpers

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const now = () => performance.now()

/** Deterministic random bytes, so every run writes the same kind of data. */
function randomBlock (n, seed = 12345) {
  const b = Buffer.allocUnsafe(n)
  let x = seed >>> 0
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
    b[i] = x & 0xff
  }
  return b
}
const SOURCE = randomBlock(64 * 1024)
const SOURCE_RECORDS = SOURCE.length / RECORD
const payload = (i) => SOURCE.subarray((i % SOURCE_RECORDS) * RECORD, (i % SOURCE_RECORDS) * RECORD + RECORD)

/** Growable latency sample, in microseconds. */
class Lat {
  constructor (cap = 1 << 16) { this.a = new Float64Array(cap); this.n = 0 }
  push (us) {
    if (this.n === this.a.length) { const b = new Float64Array(this.a.length * 2); b.set(this.a); this.a = b }
    this.a[this.n++] = us
  }

  pct (p) {
    if (this.n === 0) return NaN
    const s = this.a.subarray(0, this.n).sort()
    return s[Math.min(this.n - 1, Math.max(0, Math.ceil(p * this.n) - 1))]
  }
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)] }

const FS_TYPES = { 0xef53: 'ext4', 0x01021994: 'tmpfs', 0x858458f6: 'ramfs', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x794c7630: 'overlayfs', 0x6969: 'nfs', 0x2fc12fc1: 'zfs', 0xf2f52010: 'f2fs' }
function fsType (dir) {
  const t = Number(fs.statfsSync(dir).type)
  return FS_TYPES[t] ?? `0x${t.toString(16)}`
}

function dirBytes (dir) {
  let n = 0
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    n += e.isDirectory() ? dirBytes(p) : fs.statSync(p).size
  }
  return n
}

let dirSeq = 0
function freshDir (name) {
  const d = path.join(TMP, `${name}-${process.pid}-${dirSeq++}`)
  fs.rmSync(d, { recursive: true, force: true })
  fs.mkdirSync(d, { recursive: true })
  return d
}

function segmentCount (dir) {
  const p = path.join(dir, 'partition-0')
  try { return fs.readdirSync(p).filter((n) => /^\d{20}\.log$/.test(n)).length } catch { return 0 }
}

/**
 * Opens a fresh WAL and warms it up: a few hundred appends, then appends every 20 ms until the
 * engine has switched to its zero-filled (prepared) segment, then a short pause.
 */
async function openWarm (name, opts = {}) {
  const dir = freshDir(name)
  const wal = await WriteAhead.open(dir, { partitions: 1, ...opts })
  for (let i = 0; i < 300; i++) await wal.append(0, payload(i))
  const deadline = now() + 10_000
  while (segmentCount(dir) < 2 && now() < deadline) { await sleep(20); await wal.append(0, payload(0)) }
  const switched = segmentCount(dir) >= 2
  await sleep(200)
  return { wal, dir, switched }
}

async function closeAndRemove (wal, dir) {
  await wal.close()
  fs.rmSync(dir, { recursive: true, force: true })
}

// ---------------------------------------------------------------- crash child

if (process.argv[2] === '--crash-child') {
  // Builds a log of at least `bytes` payload bytes with appendBatch(16,384 x 64 B), says "ready <end>"
  // once there, and keeps appending until the parent SIGKILLs it.
  const dir = process.argv[3]
  const bytes = Number(process.argv[4])
  const wal = await WriteAhead.open(dir, { partitions: 1 })
  const N = 16384
  let written = 0
  let told = false
  for (let k = 0; ; k++) {
    const batch = new Array(N)
    for (let i = 0; i < N; i++) batch[i] = payload(k + i)
    await wal.appendBatch(0, batch)
    written += N * RECORD
    if (!told && written >= bytes) { told = true; process.stdout.write(`ready ${wal.offsets(0).end}\n`) }
  }
}

// ---------------------------------------------------------------- options

const argv = process.argv.slice(2)
const QUICK = argv.includes('--quick')
const SCENARIOS = ['floor', 'serial', 'batch', 'concurrent', 'read', 'iterate', 'open']
const filter = argv.filter((a) => !a.startsWith('--'))
for (const f of filter) {
  if (!SCENARIOS.some((s) => s.startsWith(f))) {
    console.error(`unknown scenario "${f}"; choose from: ${SCENARIOS.join(' ')}`)
    process.exit(2)
  }
}
const selected = (name) => filter.length === 0 || filter.some((f) => name.startsWith(f))

const CFG = QUICK
  ? { runs: 3, floorMs: 250, walMs: 400, logRecords: 500_000, readRecords: 200_000, readMs: 300, crashBytes: 128 * MiB, crashRuns: 3 }
  : { runs: 5, floorMs: 1000, walMs: 1500, logRecords: 2_000_000, readRecords: 200_000, readMs: 1000, crashBytes: 1024 * MiB, crashRuns: 3 }
const BATCHES = [1000, 16384]
const WRITERS = [8, 64, 512, 2048]

// ---------------------------------------------------------------- results

const rows = [] // { scenario, metric, unit, runs, min, median, max, better, floorKey, target }
const floorRuns = new Map() // floor key -> per-run values, paired run by run with the scenario that measured them

function record (scenario, metric, unit, runs, extra = {}) {
  const row = { scenario, metric, unit, runs, min: Math.min(...runs), median: median(runs), max: Math.max(...runs), better: 'higher', ...extra }
  rows.push(row)
  return row
}

/** A floor row; floor rows are printed first, whichever scenario measured them. */
function recordFloor (key, scenario, metric, unit, runs, better = 'higher') {
  if (floorRuns.has(key)) return
  floorRuns.set(key, runs)
  record(scenario, metric, unit, runs, { better, floorOf: key })
}

async function repeat (n, fn) {
  const out = []
  for (let i = 0; i < n; i++) out.push(await fn(i))
  return out
}

function progress (msg) { process.stderr.write(`  ${msg}\n`) }

// ---------------------------------------------------------------- 1. floor

const FLOOR_FILE_BYTES = 64 * MiB

function floorFile () {
  const file = path.join(freshDir('floor'), 'floor.dat')
  const fd = fs.openSync(file, 'w+')
  const z = Buffer.alloc(MiB)
  for (let pos = 0; pos < FLOOR_FILE_BYTES; pos += MiB) fs.writeSync(fd, z, 0, MiB, pos)
  fs.fsyncSync(fd)
  return { fd, file }
}

/** One record per write+fdatasync, overwriting in place. */
function floorSerial (fd, ms) {
  const lat = new Lat()
  let pos = 0
  let n = 0
  const start = now()
  const end = start + ms
  let t = start
  while (t < end) {
    const rec = payload(n)
    fs.writeSync(fd, rec, 0, RECORD, pos)
    fs.fdatasyncSync(fd)
    const t2 = now()
    lat.push((t2 - t) * 1000)
    t = t2
    n++
    pos += RECORD
    if (pos + RECORD > FLOOR_FILE_BYTES) pos = 0
  }
  const secs = (t - start) / 1000
  return { rate: n / secs, p50: lat.pct(0.5), p99: lat.pct(0.99) }
}

/** `count` records per write+fdatasync; each iteration frames (length + payload) and copies every record. */
function floorBatch (fd, count, ms) {
  const frame = RECORD + 4
  const buf = Buffer.allocUnsafe(count * frame)
  const lat = new Lat()
  let pos = 0
  let n = 0
  let k = 0
  const start = now()
  const end = start + ms
  let t = start
  while (t < end) {
    let off = 0
    for (let i = 0; i < count; i++) {
      buf.writeUInt32LE(RECORD, off)
      payload(k++).copy(buf, off + 4)
      off += frame
    }
    if (pos + off > FLOOR_FILE_BYTES) pos = 0
    fs.writeSync(fd, buf, 0, off, pos)
    fs.fdatasyncSync(fd)
    pos += off
    n += count
    const t2 = now()
    lat.push((t2 - t) * 1000)
    t = t2
  }
  const secs = (t - start) / 1000
  return { rate: n / secs, p50: lat.pct(0.5), p99: lat.pct(0.99) }
}

let floorFd = -1
function getFloorFd () {
  if (floorFd < 0) floorFd = floorFile().fd
  return floorFd
}
function closeFloor () {
  if (floorFd >= 0) { try { fs.closeSync(floorFd) } catch {} ; floorFd = -1 }
}

const floorSerialRows = (r) => {
  recordFloor('serial.rate', 'floor serial (1 rec/sync)', 'acks/s', 'ops/s', r.map((x) => x.rate))
  recordFloor('serial.p50', 'floor serial (1 rec/sync)', 'p50', 'µs', r.map((x) => x.p50), 'lower')
  recordFloor('serial.p99', 'floor serial (1 rec/sync)', 'p99', 'µs', r.map((x) => x.p99), 'lower')
}
const floorBatchRows = (b, r) => {
  recordFloor(`batch${b}.rate`, `floor batch ${b} rec/sync`, 'records/s', 'rec/s', r.map((x) => x.rate))
  recordFloor(`batch${b}.p50`, `floor batch ${b} rec/sync`, 'p50 per sync', 'µs', r.map((x) => x.p50), 'lower')
}

/** Only when asked for alone: scenarios measure their floor themselves, run by run, right before their own run. */
async function runFloor () {
  if (!selected('floor')) return
  const sizes = [...new Set([...BATCHES, ...WRITERS])].sort((x, y) => x - y)
  const left = (key) => !floorRuns.has(key)
  if (left('serial.rate') && !selected('serial')) {
    progress('floor: serial write + fdatasync')
    floorSerialRows(await repeat(CFG.runs, () => floorSerial(getFloorFd(), CFG.floorMs)))
  }
  for (const b of sizes) {
    if (!left(`batch${b}.rate`) || (BATCHES.includes(b) && selected('batch')) || (WRITERS.includes(b) && selected('concurrent'))) continue
    progress(`floor: ${b} records per write + fdatasync`)
    floorBatchRows(b, await repeat(CFG.runs, () => floorBatch(getFloorFd(), b, CFG.floorMs)))
  }
}

// ---------------------------------------------------------------- 2. serial append

async function runSerial () {
  if (!selected('serial')) return
  progress('serial append')
  const { wal, dir, switched } = await openWarm('serial')
  if (!switched) progress('warning: the WAL did not switch to a prepared segment during warm-up')
  const floor = []
  const r = await repeat(CFG.runs, async () => {
    floor.push(floorSerial(getFloorFd(), CFG.floorMs))
    const lat = new Lat()
    let n = 0
    const start = now()
    const end = start + CFG.walMs
    let t = start
    while (t < end) {
      await wal.append(0, payload(n))
      const t2 = now()
      lat.push((t2 - t) * 1000)
      t = t2
      n++
    }
    return { rate: n / ((t - start) / 1000), p50: lat.pct(0.5), p99: lat.pct(0.99) }
  })
  await closeAndRemove(wal, dir)
  floorSerialRows(floor)
  record('writeahead serial append', 'acks/s', 'ops/s', r.map((x) => x.rate), { floorKey: 'serial.rate' })
  record('writeahead serial append', 'p50', 'µs', r.map((x) => x.p50), { better: 'lower', floorKey: 'serial.p50', target: { max: 1.25, of: 'ratio' } })
  record('writeahead serial append', 'p99', 'µs', r.map((x) => x.p99), { better: 'lower', floorKey: 'serial.p99' })
}

// ---------------------------------------------------------------- 3. appendBatch

async function runBatch () {
  if (!selected('batch')) return
  for (const size of BATCHES) {
    progress(`appendBatch ${size}`)
    const { wal, dir } = await openWarm(`batch${size}`)
    let k = 0
    const floor = []
    const r = await repeat(CFG.runs, async () => {
      floor.push(floorBatch(getFloorFd(), size, CFG.floorMs))
      let n = 0
      const start = now()
      const end = start + CFG.walMs
      let t = start
      while (t < end) {
        const batch = new Array(size)
        for (let i = 0; i < size; i++) batch[i] = payload(k++)
        await wal.appendBatch(0, batch)
        n += size
        t = now()
      }
      return n / ((t - start) / 1000)
    })
    await closeAndRemove(wal, dir)
    floorBatchRows(size, floor)
    const target = size === 1000 ? { min: 0.7, of: 'ratio' } : size === 16384 ? { min: 0.9, of: 'ratio' } : undefined
    record(`writeahead appendBatch ${size}`, 'records/s', 'rec/s', r, { floorKey: `batch${size}.rate`, target })
  }
}

// ---------------------------------------------------------------- 4. concurrent writers

async function runConcurrent () {
  if (!selected('concurrent')) return
  for (const writers of WRITERS) {
    progress(`${writers} concurrent writers`)
    const { wal, dir } = await openWarm(`conc${writers}`)
    const floor = []
    const r = await repeat(CFG.runs, async () => {
      floor.push(floorBatch(getFloorFd(), writers, CFG.floorMs))
      const lat = new Lat(1 << 20)
      let n = 0
      const start = now()
      const end = start + CFG.walMs
      const writer = async (w) => {
        let i = w
        for (;;) {
          const t = now()
          if (t >= end) return
          await wal.append(0, payload(i++))
          lat.push((now() - t) * 1000)
          n++
        }
      }
      await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)))
      const secs = (now() - start) / 1000
      return { rate: n / secs, p50: lat.pct(0.5), p99: lat.pct(0.99) }
    })
    await closeAndRemove(wal, dir)
    floorBatchRows(writers, floor)
    const target = writers === 2048 ? { min: 750_000, of: 'value' } : undefined
    record(`writeahead ${writers} concurrent append`, 'records/s', 'rec/s', r.map((x) => x.rate), { floorKey: `batch${writers}.rate`, target })
    record(`writeahead ${writers} concurrent append`, 'p50', 'µs', r.map((x) => x.p50), { better: 'lower', floorKey: `batch${writers}.p50` })
    record(`writeahead ${writers} concurrent append`, 'p99', 'µs', r.map((x) => x.p99), { better: 'lower' })
  }
}

// ---------------------------------------------------------------- 5 + 6. read and replay

/** A closed log of `records` records written with appendBatch(`batch`), for the read scenarios. */
async function buildLog (records, batch) {
  const dir = freshDir(`log${batch}`)
  const wal = await WriteAhead.open(dir, { partitions: 1 })
  // One call at a time: calls queued in the same tick are merged by group commit into one batch.
  for (let done = 0; done < records;) {
    const size = Math.min(batch, records - done)
    const recs = new Array(size)
    for (let i = 0; i < size; i++) recs[i] = payload(done + i)
    await wal.appendBatch(0, recs)
    done += size
  }
  await wal.close()
  return dir
}

async function openLog (records, batch) {
  const dir = await buildLog(records, batch)
  const wal = await WriteAhead.open(dir, { partitions: 1 })
  const { start, end } = wal.offsets(0)
  if (end - start !== records) throw new Error(`log holds ${end - start} records, expected ${records}`)
  return { wal, dir, start }
}

async function runRead () {
  if (!selected('read')) return
  const total = CFG.readRecords
  for (const batch of [100, 16384]) {
    progress(`read by random offset: ${total.toLocaleString('en-US')}-record log written in ${batch}-record batches`)
    const { wal, dir, start } = await openLog(total, batch)
    let x = 987654321
    try {
      const r = await repeat(CFG.runs, async () => {
        let n = 0
        const t0 = now()
        const stop = t0 + CFG.readMs
        let t = t0
        while (t < stop) {
          for (let j = 0; j < 64; j++) {
            x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
            const off = start + (x % total)
            const rec = await wal.read(0, off)
            if (rec.offset !== off || rec.value.length !== RECORD) throw new Error(`read(${off}) returned offset ${rec.offset}`)
          }
          n += 64
          t = now()
        }
        return n / ((t - t0) / 1000)
      })
      record(`writeahead read (random; ${total / 1000}k recs, ${batch}-rec batches)`, 'records/s', 'rec/s', r, { target: { min: 400_000, of: 'value' } })
    } finally {
      await closeAndRemove(wal, dir)
    }
  }
}

async function runIterate () {
  if (!selected('iterate')) return
  const total = CFG.logRecords
  progress(`replay: building a ${total.toLocaleString('en-US')}-record log (16,384-record batches)`)
  const { wal, dir } = await openLog(total, 16384)
  const label = `${total / 1000}k recs`
  try {
    progress('replay via iterate / iterateBatches')
    const it = await repeat(CFG.runs, async () => {
      let n = 0
      let bytes = 0
      const t0 = now()
      for await (const rec of wal.iterate(0)) { n++; bytes += rec.value.length }
      const secs = (now() - t0) / 1000
      if (n !== total) throw new Error(`iterate returned ${n} records, expected ${total}`)
      return { rate: n / secs, mbs: bytes / 1e6 / secs }
    })
    record(`writeahead iterate (${label})`, 'records/s', 'rec/s', it.map((x) => x.rate), { target: { min: 3_000_000, of: 'value' } })
    record(`writeahead iterate (${label})`, 'payload MB/s', 'MB/s', it.map((x) => x.mbs))
    const ib = await repeat(CFG.runs, async () => {
      let n = 0
      let bytes = 0
      const t0 = now()
      for await (const recs of wal.iterateBatches(0)) { n += recs.length; for (const rec of recs) bytes += rec.value.length }
      const secs = (now() - t0) / 1000
      if (n !== total) throw new Error(`iterateBatches returned ${n} records, expected ${total}`)
      return { rate: n / secs, mbs: bytes / 1e6 / secs }
    })
    record(`writeahead iterateBatches (${label})`, 'records/s', 'rec/s', ib.map((x) => x.rate))
    record(`writeahead iterateBatches (${label})`, 'payload MB/s', 'MB/s', ib.map((x) => x.mbs))
  } finally {
    await closeAndRemove(wal, dir)
  }
}

// ---------------------------------------------------------------- 7. open after crash

function buildAndKill (dir, bytes) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--crash-child', dir, String(bytes)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    let acked = -1
    child.stdout.on('data', (d) => {
      out += d
      const m = /ready (\d+)/.exec(out)
      if (m !== null && acked < 0) { acked = Number(m[1]); child.kill('SIGKILL') }
    })
    child.on('error', reject)
    // Wait for exit: until the child is reaped its pid is alive and its lock is not stale.
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL' && acked >= 0) resolve(acked)
      else reject(new Error(`crash child exited with ${code ?? signal} before reaching ${bytes} bytes`))
    })
  })
}

async function runOpen () {
  if (!selected('open')) return
  const label = `${Math.round(CFG.crashBytes / MiB)} MiB`
  const r = await repeat(CFG.crashRuns, async (i) => {
    progress(`open after crash: building ${label} in a child (${i + 1}/${CFG.crashRuns})`)
    const dir = freshDir('crash')
    const acked = await buildAndKill(dir, CFG.crashBytes)
    const size = dirBytes(dir)
    const t0 = now()
    const wal = await WriteAhead.open(dir)
    const ms = now() - t0
    const { end } = wal.offsets(0)
    if (end < acked) throw new Error(`recovered end ${end} is below the acknowledged ${acked}`)
    await closeAndRemove(wal, dir)
    return { ms, size, end }
  })
  const gib = median(r.map((x) => x.size)) / 1024 / MiB
  record(`open after SIGKILL (${label} payload, ${gib.toFixed(2)} GiB on disk)`, 'open time', 'ms', r.map((x) => x.ms), { better: 'lower', target: { max: 1000, of: 'value' } })
}

// ---------------------------------------------------------------- table and JSON

function fmt (v, unit) {
  if (!Number.isFinite(v)) return '—'
  if (unit === 'µs' || unit === 'ms' || unit === 'MB/s') return v >= 100 ? v.toFixed(0) : v.toFixed(1)
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)}k`
  return v.toFixed(0)
}

function finish (row) {
  const fr = row.floorKey !== undefined ? floorRuns.get(row.floorKey) : undefined
  row.floor = fr !== undefined ? median(fr) : null
  // Ratio: the median of per-run ratios, each WAL run against the floor measured just before it.
  row.ratio = fr !== undefined && fr.length === row.runs.length ? median(row.runs.map((v, i) => v / fr[i])) : null
  if (row.target !== undefined) {
    const v = row.target.of === 'ratio' ? row.ratio : row.median
    if (v === null) row.status = 'n/a (no floor)'
    else row.status = (row.target.min !== undefined ? v >= row.target.min : v <= row.target.max) ? 'PASS' : 'MISS'
    const t = row.target
    const bound = t.of === 'ratio' ? `${t.min ?? t.max}× floor` : `${fmt(t.min ?? t.max, row.unit)} ${row.unit}`
    row.targetText = `${t.min !== undefined ? '≥' : '≤'} ${bound}`
  }
}

const floorRank = (r) => r.floorOf.startsWith('serial') ? -1 : parseInt(r.floorOf.slice(5), 10)
/** Floor rows first (serial, then by batch size), then the rest in the order they ran. */
const ordered = () => [...rows.filter((r) => r.floorOf !== undefined).sort((a, b) => floorRank(a) - floorRank(b)), ...rows.filter((r) => r.floorOf === undefined)]

function printTable () {
  const head = ['scenario', 'metric', 'min', 'median', 'max', 'floor', 'ratio', 'target', 'status']
  const lines = ordered().map((r) => [
    r.scenario, `${r.metric} (${r.unit})`, fmt(r.min, r.unit), fmt(r.median, r.unit), fmt(r.max, r.unit),
    r.floor === null ? '' : fmt(r.floor, r.unit), r.ratio === null ? '' : `${r.ratio.toFixed(2)}×`, r.targetText ?? '', r.status ?? ''
  ])
  const w = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const right = new Set([2, 3, 4, 5, 6])
  const line = (cells) => cells.map((c, i) => right.has(i) ? c.padStart(w[i]) : c.padEnd(w[i])).join('  ').trimEnd()
  console.log(line(head))
  console.log(w.map((n) => '-'.repeat(n)).join('  '))
  for (const l of lines) console.log(line(l))
}

// ---------------------------------------------------------------- main

fs.mkdirSync(TMP, { recursive: true })
const fsKind = fsType(TMP)
if (fsKind === 'tmpfs' || fsKind === 'ramfs') {
  console.error(`refusing to benchmark on ${fsKind} (${TMP}): fdatasync would be free`)
  process.exit(1)
}
const cleanup = () => { try { fs.rmSync(TMP, { recursive: true, force: true }) } catch {} }
process.on('SIGINT', () => { cleanup(); process.exit(130) })

const machine = {
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cpus: os.cpus().length,
  node: process.version,
  os: `${os.type()} ${os.release()} ${os.arch()}`,
  memGiB: +(os.totalmem() / 1024 ** 3).toFixed(1),
  fs: fsKind,
  dir: path.relative(process.cwd(), TMP) || TMP
}
console.log(`writeahead core bench${QUICK ? ' (--quick)' : ''}: ${machine.cpu} x${machine.cpus}, node ${machine.node}, ${machine.fs} at ${machine.dir}; ${RECORD}-byte records, ${CFG.runs} runs each`)

const t0 = now()
let failed = null
try {
  await runFloor()
  await runSerial()
  await runBatch()
  await runConcurrent()
  await runRead()
  await runIterate()
  await runOpen()
} catch (err) {
  failed = err
} finally {
  closeFloor()
  cleanup()
}
const seconds = (now() - t0) / 1000
for (const r of rows) finish(r)
console.log()
printTable()
console.log(`\n${rows.filter((r) => r.status === 'PASS').length} PASS, ${rows.filter((r) => r.status === 'MISS').length} MISS; ${seconds.toFixed(1)} s`)

const date = new Date().toISOString()
const json = {
  date,
  quick: QUICK,
  filter,
  seconds: +seconds.toFixed(1),
  config: { ...CFG, recordBytes: RECORD, batches: BATCHES, writers: WRITERS },
  machine,
  error: failed === null ? null : String(failed?.stack ?? failed),
  results: ordered().map(({ floorKey, floorOf, target, targetText, ...r }) => ({ ...r, floorKey: floorKey ?? floorOf ?? null, target: targetText ?? null }))
}
fs.mkdirSync(RESULTS, { recursive: true })
const text = JSON.stringify(json, null, 2) + '\n'
fs.writeFileSync(path.join(RESULTS, `core-${date.replace(/:/g, '-')}.json`), text)
fs.writeFileSync(path.join(RESULTS, 'latest.json'), text)
if (failed !== null) { console.error(failed); process.exit(1) }
