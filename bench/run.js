#!/usr/bin/env node
// writeahead against the raw write+fdatasync floor and the peers a user would pick instead
// (better-sqlite3, classic-level), in one run on the same disk. Usage: USAGE below (--help).
//
// Everything runs on the disk under bench/tmp/run-<pid> (tmpfs/ramfs is refused), removed at the end.
// The systems run interleaved, round by round (see measure()), and in the write scenarios each run
// has its own floor run right before it; ratios are medians of per-run ratios, so disk drift on
// this shared machine hits every system alike.
// Output: a table on stdout; bench/results/latest.json (every run); for a full run (no --quick, no
// filter) also bench/results/run-<date>.json, the charts (bench/results/charts/*.svg),
// bench/results/README-table.md and the README's benchmark section.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import {
  BENCH, KiB, Lat, MiB, RECORD, RESULTS, SCENARIOS, TMP, checkDisk, cleanupWork, dirBytes, freshDir, median, now, payload,
  payloads, progress, removeDir, sleep
} from './lib/common.js'
import { floorInfo, floorSerial, floorBatch, buildFramed, floorPointRead, floorReplay, closeFloor } from './floor.js'
import { WAL, PEERS } from './peers/index.js'
import { finishRow, consoleTable, summary } from './lib/results.js'
import { benchArgs } from './lib/args.js'

// ---------------------------------------------------------------- options

const USAGE = `usage: npm run bench -- [scenario ...] [options]      (or: node bench/run.js ...)

  npm run bench                     everything (< 10 min on 2 cores)
  npm run bench -- --quick          smaller sizes, shorter runs (< 1.5 min)
  npm run bench -- serial batch     only some scenarios (prefixes work)
  npm run bench -- kafka            the Kafka bench instead (node bench/kafka.js --help)

scenarios: ${SCENARIOS.join(' ')}
options:
  --quick             smaller sizes and shorter runs
  --systems=a,b       only these systems: floor writeahead sqlite level
  --runs=N            runs per scenario (default 3)
  --no-save           no results files, charts or README update
  -h, --help          this text`

const argv = process.argv.slice(2)

if (argv.includes('kafka')) {
  // Delegated: the Kafka bench has its own runner and flags; it gets the other arguments.
  const child = spawn(process.execPath, [path.join(BENCH, 'kafka.js'), ...argv.filter((a) => a !== 'kafka')], { stdio: 'inherit' })
  child.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)))
  await new Promise(() => {})
}

const { values: flags, positionals: filter } = benchArgs(USAGE, {
  quick: { type: 'boolean' },
  'no-save': { type: 'boolean' },
  systems: { type: 'string' },
  runs: { type: 'string' }
}, { positionals: true, numbers: ['runs'] })
const QUICK = flags.quick === true
const SAVE = flags['no-save'] !== true
for (const f of filter) {
  if (!SCENARIOS.some((s) => s.startsWith(f))) {
    console.error(`unknown scenario "${f}"; choose from: ${SCENARIOS.join(' ')} (or kafka)`)
    process.exit(2)
  }
}
const selected = (name) => filter.length === 0 || filter.some((f) => name.startsWith(f))
const systemFilter = flags.systems?.split(',')
const ALL = ['floor', WAL.key, ...PEERS.map((p) => p.key)]
for (const s of systemFilter ?? []) if (!ALL.includes(s)) { console.error(`unknown system "${s}"; choose from: ${ALL.join(' ')}`); process.exit(2) }
const useSystem = (key) => systemFilter === undefined || systemFilter.includes(key)
const FLOOR = useSystem('floor')
const peers = PEERS.filter((p) => useSystem(p.key) && p.available)

const CFG = QUICK
  ? { runs: 3, readRuns: 3, ms: 200, serialMs: 400, floorMs: 120, records: 200_000, readMs: 200, crashBytes: 64 * MiB, rekillBytes: 4 * MiB }
  : { runs: 3, readRuns: 3, ms: 800, serialMs: 1500, floorMs: 300, records: 2_000_000, readMs: 800, crashBytes: 1024 * MiB, rekillBytes: 32 * MiB }
if (flags.runs !== undefined) CFG.runs = CFG.readRuns = Number(flags.runs)
const BATCHES = [1000, 16384]
const WRITERS = [8, 64, 512, 2048]
const PAYLOADS = [KiB, 64 * KiB]
const PAYLOAD_BATCH = 100
const PIPE_BATCH = 1000
const COMMITTERS = 64

const systems = Object.fromEntries([floorInfo, WAL, ...PEERS].map((s) => [s.key, {
  label: s.label, short: s.short, version: s.version, durable: s.durable, note: s.note,
  available: s.available !== false, unavailable: s.unavailable ?? null
}]))

// ---------------------------------------------------------------- measuring

const rows = []
const row = (r) => { rows.push(r); return r }

/**
 * Runs every system `runs` times, interleaved: round i runs each system once (the order rotates
 * from round to round), each right after its own floor run when `floor` is given. All systems are
 * set up before the first round and torn down after the last, so every system sees the same
 * stretch of time on this shared, noisy disk; with `perRun` (the write scenarios) each run gets
 * a fresh store, opened right before it and closed right after. -> { [key]: { res[], flo[] } }
 */
async function measure (label, list, { floor, runs = CFG.runs, perRun = false }) {
  // --systems=floor alone: the floor runs by itself (paired runs only happen before a system's).
  if (floor !== undefined && FLOOR && list.length === 0) return measure(label, [{ key: 'floor', run: floor }], { runs })
  const out = {}
  const state = new Map()
  const up = async (s) => { state.set(s.key, s.setup === undefined ? undefined : await s.setup()) }
  const down = async (s) => {
    if (!state.has(s.key)) return
    const h = state.get(s.key)
    state.delete(s.key)
    if (s.teardown !== undefined) await s.teardown(h)
  }
  try {
    for (const s of list) {
      out[s.key] = { res: [], flo: [] }
      if (!perRun) await up(s)
    }
    for (let i = 0; i < runs; i++) {
      progress(`${label}: round ${i + 1}/${runs}`)
      for (let j = 0; j < list.length; j++) {
        const s = list[(i + j) % list.length]
        if (perRun) await up(s)
        if (floor !== undefined && FLOOR) out[s.key].flo.push(floor())
        out[s.key].res.push(await s.run(state.get(s.key), i))
        // Closing ends a store's background work (LevelDB compacts on its own threads until
        // closed), so it cannot slow down the next system's run on the same disk.
        if (perRun) await down(s)
      }
    }
  } finally {
    for (const s of list) await down(s)
  }
  return out
}

/** A row from measure()'s output: metric `m` of each system, paired with floor metric `fm`. */
function values (m, got, fm = m) {
  const v = {}
  const pooled = []
  for (const [k, { res, flo }] of Object.entries(got)) {
    if (k === 'floor') { v.floor = { runs: res.map((r) => r[m]) }; continue }
    v[k] = { runs: res.map((r) => r[m]) }
    if (flo.length === res.length) { v[k].floorRuns = flo.map((f) => f[fm]); pooled.push(...v[k].floorRuns) }
  }
  if (pooled.length > 0 && v.floor === undefined) v.floor = { runs: pooled }
  return v
}

/** Opens a fresh store per system for a write scenario; `fn(handle)` is one timed run. */
function writers (fn, { warm = true, concurrent = false } = {}) {
  const list = []
  for (const s of [WAL, ...peers]) {
    if (!useSystem(s.key)) continue
    let dir
    list.push({
      key: s.key,
      async setup () { dir = freshDir(s.key); return s.open(dir, { warm }) },
      run: (h) => fn(concurrent && h.appendQueued !== undefined ? { ...h, append: h.appendQueued } : h),
      async teardown (h) { await h.close(); removeDir(dir) }
    })
  }
  return list
}

async function serialRun (h, ms) {
  const lat = new Lat()
  let n = 0
  const start = now()
  const end = start + ms
  let t = start
  while (t < end) {
    await h.append(payload(n))
    const t2 = now()
    lat.push((t2 - t) * 1000)
    t = t2
    n++
  }
  return { rate: n / ((t - start) / 1000), p50: lat.pct(0.5), p99: lat.pct(0.99), p999: lat.pct(0.999) }
}

/** Four distinct batches of `count` records, built once: commits cycle through them (no per-commit allocation in the bench). */
const batchCache = new Map()
function batchesOf (count, size) {
  const key = `${count}x${size}`
  if (!batchCache.has(key)) { batchCache.clear(); batchCache.set(key, [0, 1, 2, 3].map((j) => payloads(j * count, count, size))) }
  return batchCache.get(key)
}

async function batchRun (h, count, size, ms) {
  const bs = batchesOf(count, size)
  let n = 0
  let k = 0
  const start = now()
  const end = start + ms
  let t = start
  while (t < end) {
    await h.appendBatch(bs[k++ & 3])
    n += count
    t = now()
  }
  const secs = (t - start) / 1000
  return { rate: n / secs, mbs: n * size / 1e6 / secs }
}

async function concurrentRun (h, writerCount, ms) {
  const lat = new Lat(1 << 18)
  let n = 0
  const start = now()
  const end = start + ms
  const writer = async (w) => {
    let i = w
    for (;;) {
      const t = now()
      if (t >= end) return
      await h.append(payload(i))
      i += writerCount
      lat.push((now() - t) * 1000)
      n++
    }
  }
  await Promise.all(Array.from({ length: writerCount }, (_, w) => writer(w)))
  return { rate: n / ((now() - start) / 1000), p50: lat.pct(0.5), p99: lat.pct(0.99) }
}

// ---------------------------------------------------------------- write scenarios

async function runSerial () {
  if (!selected('serial')) return
  const got = await measure('serial durable acks', writers((h) => serialRun(h, CFG.serialMs)), { floor: () => floorSerial(CFG.floorMs), perRun: true })
  const base = { section: 'Serial durable acks (1 record per commit, awaited one by one)', title: 'serial append' }
  row({ ...base, id: 'serial.rate', metric: 'acks/s', unit: 'ops/s', better: 'higher', values: values('rate', got) })
  row({ ...base, id: 'serial.p50', metric: 'p50', unit: 'µs', better: 'lower', values: values('p50', got), target: { of: 'floor', max: 1.25 } })
  row({ ...base, id: 'serial.p99', metric: 'p99', unit: 'µs', better: 'lower', values: values('p99', got) })
  row({ ...base, id: 'serial.p999', metric: 'p99.9', unit: 'µs', better: 'lower', values: values('p999', got) })
}

async function runBatch () {
  if (!selected('batch')) return
  for (const size of BATCHES) {
    const got = await measure(`batch ${size}`, writers((h) => batchRun(h, size, RECORD, CFG.ms)), { floor: () => floorBatch(size, RECORD, CFG.floorMs), perRun: true })
    // The core issue's targets: 0.7x the floor at 1,000 records a commit, 0.9x at 16,384.
    row({ section: 'Batches (records per commit)', id: `batch.${size}.rate`, title: `appendBatch ${size}`, metric: 'records/s', unit: 'rec/s', better: 'higher', values: values('rate', got), target: { of: 'floor', min: size >= 16384 ? 0.9 : 0.7 } })
  }
}

async function runConcurrent () {
  if (!selected('concurrent')) return
  for (const w of WRITERS) {
    const got = await measure(`${w} concurrent writers`, writers((h) => concurrentRun(h, w, CFG.ms), { concurrent: true }), { floor: () => floorBatch(w, RECORD, CFG.floorMs), perRun: true })
    const base = { section: 'Concurrent single-record writers (floor: that many records per sync)', title: `${w} writers` }
    row({ ...base, id: `concurrent.${w}.rate`, metric: 'records/s', unit: 'rec/s', better: 'higher', values: values('rate', got), target: w === 2048 ? { of: 'value', min: 750_000 } : undefined })
    row({ ...base, id: `concurrent.${w}.p50`, metric: 'p50', unit: 'µs', better: 'lower', values: values('p50', got) })
    row({ ...base, id: `concurrent.${w}.p99`, metric: 'p99', unit: 'µs', better: 'lower', values: values('p99', got) })
  }
}

async function runPayload () {
  if (!selected('payload')) return
  for (const size of PAYLOADS) {
    const label = `${size / KiB} KiB`
    const got = await measure(`${label} payloads, batch ${PAYLOAD_BATCH}`, writers((h) => batchRun(h, PAYLOAD_BATCH, size, CFG.ms)), { floor: () => floorBatch(PAYLOAD_BATCH, size, CFG.floorMs), perRun: true })
    row({ section: `Payload sizes (batch ${PAYLOAD_BATCH})`, id: `payload.${size}.mbs`, title: `${label} × ${PAYLOAD_BATCH}`, metric: 'MB/s', unit: 'MB/s', better: 'higher', values: values('mbs', got) })
  }
}

// ---------------------------------------------------------------- reads

/** Builds each system's store of `records` records (appendBatch of 1,000), closes it. */
async function buildStores (records) {
  const stores = {}
  for (const s of [WAL, ...peers]) {
    if (!useSystem(s.key)) continue
    progress(`building a ${records.toLocaleString('en-US')}-record store: ${s.key}`)
    const dir = freshDir(`store-${s.key}`)
    const h = await s.open(dir)
    for (let done = 0; done < records; done += 1000) await h.appendBatch(payloads(done, Math.min(1000, records - done)))
    await h.close()
    stores[s.key] = { sys: s, dir }
  }
  if (FLOOR) stores.floor = buildFramed(records)
  return stores
}

function readers (stores, fn, floorFn) {
  const list = []
  if (stores.floor !== undefined && floorFn !== undefined) list.push({ key: 'floor', run: () => floorFn(stores.floor) })
  for (const [key, st] of Object.entries(stores)) {
    if (key === 'floor') continue
    list.push({ key, setup: () => st.sys.open(st.dir), run: (h) => fn(h, key), teardown: (h) => h.close() })
  }
  return list
}

async function runReads () {
  const wantRead = selected('read')
  const wantReplay = selected('replay')
  if (!wantRead && !wantReplay) return
  const total = CFG.records
  const stores = await buildStores(total)
  const label = `${(total / 1e6).toFixed(total >= 1e6 ? 0 : 1)}M records`
  try {
    if (wantRead) {
      let x = 987654321
      const got = await measure('point reads', readers(stores, async (h) => {
        let n = 0
        const t0 = now()
        const stop = t0 + CFG.readMs
        let t = t0
        while (t < stop) {
          for (let j = 0; j < 64; j++) {
            x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
            const v = await h.read(x % total)
            if (v.length !== RECORD) throw new Error(`read returned ${v.length} bytes`)
          }
          n += 64
          t = now()
        }
        return { rate: n / ((t - t0) / 1000) }
      }, (fr) => floorPointRead(fr, CFG.readMs)), { runs: CFG.readRuns })
      row({ section: 'Reads', id: 'read.point', title: `point reads, random (${label})`, metric: 'records/s', unit: 'rec/s', better: 'higher', values: values('rate', got), target: { of: 'value', min: 400_000 }, note: 'writeahead: read(p, offset); sqlite: SELECT by rowid; level: getSync(key); floor: one pread per record' })
    }
    if (wantReplay) {
      const check = (r) => { if (r.n !== total) throw new Error(`replay returned ${r.n} records, expected ${total}`); return r }
      const timedReplay = async (fn) => { const t0 = now(); const r = check(await fn()); const secs = (now() - t0) / 1000; return { rate: r.n / secs, mbs: r.bytes / 1e6 / secs } }
      const one = await measure('replay, record by record', readers(stores, (h) => timedReplay(() => h.replay()), (fr) => floorReplay(fr)), { runs: CFG.readRuns })
      const many = await measure('replay, batched', readers(stores, (h) => timedReplay(() => h.replayBatched()), (fr) => floorReplay(fr)), { runs: CFG.readRuns })
      const sec = 'Reads'
      const noteOne = 'writeahead: for await of iterate(); sqlite: stmt.iterate(); level: for await of iterator(); floor: 1 MiB reads, walking length-framed records'
      const noteMany = 'writeahead: iterateBatches(); sqlite: pages of 16,384 rows by rowid; level: iterator().nextv(1000)'
      row({ section: sec, id: 'replay.record.rate', title: `replay, record by record (${label})`, metric: 'records/s', unit: 'rec/s', better: 'higher', values: values('rate', one), target: { of: 'value', min: 3_000_000 }, note: noteOne })
      row({ section: sec, id: 'replay.record.mbs', title: `replay, record by record (${label})`, metric: 'payload MB/s', unit: 'MB/s', better: 'higher', values: values('mbs', one) })
      row({ section: sec, id: 'replay.batch.rate', title: `replay, batched (${label})`, metric: 'records/s', unit: 'rec/s', better: 'higher', values: values('rate', many), note: noteMany })
      row({ section: sec, id: 'replay.batch.mbs', title: `replay, batched (${label})`, metric: 'payload MB/s', unit: 'MB/s', better: 'higher', values: values('mbs', many) })
      if (stores.writeahead !== undefined) {
        const st = stores.writeahead
        const wal = [{ key: 'writeahead', setup: () => st.sys.open(st.dir), teardown: (h) => h.close(), run: (h) => timedReplay(() => h.replayStream()) }]
        const rs = await measure('readable(), non-live', wal, { runs: CFG.readRuns })
        const live = [{
          key: 'writeahead',
          setup: () => st.sys.open(st.dir),
          teardown: (h) => h.close(),
          run: (h) => timedReplay(async () => {
            let n = 0; let bytes = 0
            const last = h.wal.offsets(0).end - 1
            for await (const rec of h.wal.readable(0, { from: 'earliest', live: true })) { n++; bytes += rec.value.length; if (rec.offset === last) break }
            return { n, bytes }
          })
        }]
        const rl = await measure('readable(), live', live, { runs: CFG.readRuns })
        const s2 = 'Streams'
        row({ section: s2, id: 'readable.rate', title: `readable() replay, non-live (${label})`, metric: 'records/s', unit: 'rec/s', better: 'higher', values: values('rate', rs), target: { of: 'value', min: 2_000_000 } })
        row({ section: s2, id: 'readable.live.rate', title: `readable() replay, live (${label})`, metric: 'records/s', unit: 'rec/s', better: 'higher', values: values('rate', rl), target: { of: 'value', min: 2_000_000 } })
      }
    }
  } finally {
    for (const st of Object.values(stores)) removeDir(st.dir)
  }
}

// ---------------------------------------------------------------- streams: pipeline, live latency, groups

/**
 * A fast object-mode source: pushes records until its buffer is full, for `ms`. Like batchRun's
 * loop it hands over payloads built beforehand and reads the clock now and then, not per record:
 * a Readable calls read() once per record consumed, and a clock read plus a fresh subarray there
 * cost as much as the writable itself, charging the source's work to the stream under test.
 */
const SOURCE_PAYLOADS = 4096
function source (ms) {
  const pool = payloads(0, SOURCE_PAYLOADS)
  let i = 0
  let check = 0
  const end = now() + ms
  const src = new Readable({
    objectMode: true,
    highWaterMark: 4096,
    read () {
      if (i >= check) {
        check = i + 256
        if (now() >= end) { this.push(null); return }
      }
      while (this.push(pool[i++ % SOURCE_PAYLOADS]));
    }
  })
  return { src, count: () => i }
}

async function runStreams () {
  if (!selected('streams') || !useSystem(WAL.key)) return
  const sec = 'Streams'
  // writable() through pipeline() against appendBatch at the same batch size.
  {
    const ab = []
    const batches = []
    const got = await measure(`writable() pipeline vs appendBatch ${PIPE_BATCH}`, [{
      key: 'writeahead',
      async setup () { const dir = freshDir('pipe'); return { dir, h: await WAL.open(dir, { warm: true }) } },
      async teardown ({ dir, h }) { await h.close(); removeDir(dir) },
      async run ({ h }) {
        ab.push((await batchRun(h, PIPE_BATCH, RECORD, CFG.ms)).rate)
        const wal = h.wal
        let commits = 0
        let recs = 0
        wal.appendBatch = function (p, inputs, o) { commits++; recs += inputs.length; return Object.getPrototypeOf(wal).appendBatch.call(wal, p, inputs, o) }
        const { src } = source(CFG.ms)
        const t0 = now()
        // highWaterMark counts bytes per record (a 64-byte Buffer counts 88): about PIPE_BATCH records per commit.
        await pipeline(src, wal.writable(0, { highWaterMark: PIPE_BATCH * (RECORD + 24) }))
        const secs = (now() - t0) / 1000
        delete wal.appendBatch
        batches.push(recs / commits)
        return { rate: recs / secs }
      }
    }], { floor: () => floorBatch(PIPE_BATCH, RECORD, CFG.floorMs) })
    const v = values('rate', got)
    row({
      section: sec,
      id: 'pipeline.rate',
      title: `writable() pipeline (≈${PIPE_BATCH}/commit)`,
      metric: 'records/s',
      unit: 'rec/s',
      better: 'higher',
      values: v,
      ref: { label: `appendBatch ${PIPE_BATCH}`, runs: ab },
      target: { of: 'ref', min: 0.8 },
      note: `measured ${median(batches).toFixed(0)} records per commit on average; the floor is ${PIPE_BATCH} records per sync`
    })
  }
  // From append() to a live reader.
  {
    const got = await measure('append → live reader latency', [{
      key: 'writeahead',
      async setup () { const dir = freshDir('live'); return { dir, h: await WAL.open(dir, { warm: true }) } },
      async teardown ({ dir, h }) { await h.close(); removeDir(dir) },
      async run ({ h }) {
        const wal = h.wal
        const rs = wal.readable(0, { from: 'latest', live: true })
        let want = -1
        let arrived = null
        rs.on('data', (rec) => { if (rec.offset === want && arrived !== null) { const a = arrived; arrived = null; a(now()) } })
        await sleep(20)
        const lat = new Lat()
        const end = now() + CFG.serialMs
        let n = 0
        while (now() < end) {
          want = wal.offsets(0).end
          const seen = new Promise((resolve) => { arrived = resolve })
          const t0 = now()
          const [, t1] = await Promise.all([wal.append(0, payload(n++)), seen])
          lat.push((t1 - t0) * 1000)
        }
        rs.destroy()
        return { p50: lat.pct(0.5), p99: lat.pct(0.99), rate: n }
      }
    }], { floor: () => floorSerial(CFG.floorMs) })
    const base = { section: sec, title: 'append() → live reader' }
    row({ ...base, id: 'live.p50', metric: 'p50', unit: 'µs', better: 'lower', values: values('p50', got), target: { of: 'floor', max: 2 }, note: 'from the append() call to the record arriving at a live readable(); floor: one write + fdatasync' })
    row({ ...base, id: 'live.p99', metric: 'p99', unit: 'µs', better: 'lower', values: values('p99', got) })
  }
  // Consumer-group commits: wal.group(g).commit(p, n); concurrent commits share one meta commit.
  for (const committers of [1, COMMITTERS]) {
    const got = await measure(`group commit, ${committers} committer(s)`, [{
      key: 'writeahead',
      async setup () { const dir = freshDir('group'); return { dir, h: await WAL.open(dir, { warm: true }) } },
      async teardown ({ dir, h }) { await h.close(); removeDir(dir) },
      async run ({ h }) {
        const wal = h.wal
        const end = wal.offsets(0).end
        const stop = now() + CFG.ms
        let n = 0
        const t0 = now()
        await Promise.all(Array.from({ length: committers }, async (_, c) => {
          const g = wal.group(`g${c}`)
          for (let k = 1; now() < stop; k++) { await g.commit(0, 1 + (k % (end - 1))); n++ }
        }))
        return { rate: n / ((now() - t0) / 1000) }
      }
    }], { floor: () => floorSerial(CFG.floorMs) })
    row({ section: sec, id: `group.${committers}.rate`, title: `group(g).commit(), ${committers} concurrent`, metric: 'commits/s', unit: 'ops/s', better: 'higher', values: values('rate', got), note: 'floor: one write + fdatasync per commit' })
  }
}

// ---------------------------------------------------------------- open after crash

/** The crash child running now, if any: an interrupted bench kills it before removing its directory. */
let crashChild = null

function buildAndKill (system, dir, bytes) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(BENCH, 'lib', 'crash-child.js'), system, dir, String(bytes)], { stdio: ['pipe', 'pipe', 'inherit'] }) // stdin: see crash-child.js
    crashChild = child
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
      crashChild = null
      if (signal === 'SIGKILL' && acked >= 0) resolve(acked)
      else reject(new Error(`${system} crash child exited with ${code ?? signal} before writing ${bytes} bytes`))
    })
  })
}

async function runOpen () {
  if (!selected('open')) return
  const label = `${Math.round(CFG.crashBytes / MiB)} MiB`
  const sizes = {}
  const list = [WAL, ...peers].filter((s) => useSystem(s.key)).map((s) => ({
    key: s.key,
    async setup () {
      const dir = freshDir(`crash-${s.key}`)
      progress(`open after crash: ${s.key} builds ${label} in a child, SIGKILLed`)
      return { dir, acked: await buildAndKill(s.key, dir, CFG.crashBytes) }
    },
    async run (st) {
      // Every run: the child reopens the log, appends a little more, and is killed again, so each
      // system opens right after its own crash (not after the other systems' builds have pushed
      // its files out of the page cache, as the first run would otherwise).
      st.acked = await buildAndKill(s.key, st.dir, CFG.rekillBytes)
      sizes[s.key] = dirBytes(st.dir)
      const t0 = now()
      const r = await s.recover(st.dir)
      const ms = now() - t0
      await r.close()
      if (r.end < st.acked) throw new Error(`${s.key}: recovered end ${r.end} is below the acknowledged ${st.acked}`)
      return { ms }
    },
    teardown: (st) => removeDir(st.dir)
  }))
  const got = await measure('open after SIGKILL', list, { runs: CFG.readRuns })
  const gib = (k) => sizes[k] === undefined ? '' : `${k} ${(sizes[k] / 1024 / MiB).toFixed(2)}`
  row({
    section: 'Open after crash',
    id: 'open.ms',
    title: `open after SIGKILL (${label} of 64 B records)`,
    metric: 'open time',
    unit: 'ms',
    better: 'lower',
    values: values('ms', got),
    target: { of: 'value', max: 1000 },
    note: `open plus finding the last record, after SIGKILL during a 16,384-record batch append; GiB on disk: ${Object.keys(sizes).map(gib).join(', ')}`
  })
}

// ---------------------------------------------------------------- main

const fsKind = checkDisk(TMP)
const cleanup = cleanupWork
// Interrupted (Ctrl-C, or a kill/timeout's SIGTERM, which used to leave bench/tmp/run-<pid> behind):
// stop the crash child first, else it can recreate files in the directory being removed.
const interrupted = (code) => () => { crashChild?.kill('SIGKILL'); closeFloor(); cleanup(); process.exit(code) }
process.on('SIGINT', interrupted(130))
process.on('SIGTERM', interrupted(143))

const machine = {
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cpus: os.cpus().length,
  node: process.version,
  os: `${os.type()} ${os.release()} ${os.arch()}`,
  memGiB: +(os.totalmem() / 1024 ** 3).toFixed(1),
  fs: fsKind,
  dir: path.relative(process.cwd(), TMP) || TMP
}
console.log(`writeahead bench${QUICK ? ' (--quick)' : ''}: ${machine.cpu} x${machine.cpus}, node ${machine.node}, ${machine.fs} at ${machine.dir}; ${RECORD}-byte records unless noted, ${CFG.runs} runs each`)
for (const p of PEERS) if (!p.available) console.log(`  ${p.label}: NOT MEASURED: ${p.unavailable}`)

const t0 = now()
let failed = null
try {
  await runSerial()
  await runBatch()
  await runConcurrent()
  await runPayload()
  await runReads()
  await runStreams()
  await runOpen()
} catch (err) {
  failed = err
} finally {
  closeFloor()
  cleanup()
}
const seconds = (now() - t0) / 1000
for (const r of rows) {
  for (const p of PEERS) if (!p.available && r.values.writeahead !== undefined && r.id !== undefined && !r.id.startsWith('readable') && !r.id.startsWith('pipeline') && !r.id.startsWith('live') && !r.id.startsWith('group')) r.values[p.key] = { na: p.unavailable }
  finishRow(r, systems)
}
console.log()
console.log(consoleTable(rows, systems))
const sum = summary(rows)
console.log(`\ntargets: ${sum.targetsPassed} PASS, ${sum.targetsMissed.length} MISS${sum.targetsMissed.length > 0 ? ` (${sum.targetsMissed.join('; ')})` : ''}`)
console.log(`peers: ahead in ${sum.aheadOfPeers}, behind in ${sum.behindPeers.length}${sum.behindPeers.length > 0 ? ` (${sum.behindPeers.join('; ')})` : ''}`)
console.log(`${seconds.toFixed(1)} s`)

const date = new Date().toISOString()
const full = !QUICK && filter.length === 0 && systemFilter === undefined && flags.runs === undefined && failed === null
const json = {
  date,
  quick: QUICK,
  full,
  filter,
  systemFilter: systemFilter ?? null,
  seconds: +seconds.toFixed(1),
  config: { ...CFG, recordBytes: RECORD, batches: BATCHES, writers: WRITERS, payloads: PAYLOADS, payloadBatch: PAYLOAD_BATCH, pipelineBatch: PIPE_BATCH, committers: COMMITTERS },
  machine,
  systems,
  error: failed === null ? null : String(failed?.stack ?? failed),
  summary: sum,
  rows
}
if (SAVE) {
  fs.mkdirSync(RESULTS, { recursive: true })
  const text = JSON.stringify(json, null, 2) + '\n'
  fs.writeFileSync(path.join(RESULTS, 'latest.json'), text)
  if (full) {
    const file = path.join(RESULTS, `run-${date.replace(/:/g, '-')}.json`)
    fs.writeFileSync(file, text)
    const { renderCharts } = await import('./charts.js')
    const charts = await renderCharts(json)
    const { writeTable, writeReadme } = await import('./readme-table.js')
    writeReadme(writeTable(json, path.relative(path.dirname(BENCH), file)))
    console.log(`results: ${path.relative(process.cwd(), file)}, charts: ${charts.map((c) => path.relative(process.cwd(), c)).join(', ')}, table: bench/results/README-table.md and README.md`)
  } else {
    console.log('results: bench/results/latest.json (not a full run: no dated file, charts or README table)')
  }
}
if (failed !== null) { console.error(failed); process.exit(1) }
