import test from 'ava'
import fs from 'node:fs'
import path from 'node:path'
import fc from 'fast-check'
import { fileURLToPath } from 'node:url'
import { WriteAhead, WalError } from '../dist/src/index.js'
import { SimDisk } from './helpers/sim-disk.js'
import { recordFor, sameRecord } from './fixtures/records.js'

const CORPUS = fileURLToPath(new URL('./fuzz-corpus/', import.meta.url))
const DIR = '/sim/wal'
const P = 2
const RUNS = Number(process.env.FUZZ_RUNS ?? 300)

/** A log with several sealed segments, index files, a meta log with group cursors, and a trim. */
async function baseImage () {
  const disk = new SimDisk()
  const wal = await WriteAhead.open(DIR, { io: disk.io, partitions: P, segmentBytes: 8 * 1024, preallocate: false })
  for (let p = 0; p < P; p++) {
    for (let i = 0; i < 120; i += 6) await wal.appendBatch(p, Array.from({ length: 6 }, (_, j) => recordFor(p, i + j)))
  }
  await wal.group('g').commit(0, 50)
  await wal.group('g').commit(1, 7)
  await wal.trimBefore(1, 30)
  // Reads build and write the index files of sealed segments.
  for (let p = 0; p < P; p++) await wal.read(p, wal.offsets(p).end - 1)
  const offsets = Array.from({ length: P }, (_, p) => wal.offsets(p))
  await wal.close()
  const files = new Map()
  for (const sub of ['meta', 'partition-0', 'partition-1']) {
    for (const name of disk.listDir(`${DIR}/${sub}`)) files.set(`${DIR}/${sub}/${name}`, disk.readFile(`${DIR}/${sub}/${name}`))
  }
  return { files, offsets }
}

const mutation = fc.record({
  kind: fc.constantFrom('flip', 'bytes', 'truncate', 'zero'),
  // A uniform position in the file: fc.double leans so far to 0 and 1 that nearly every mutation hit a file's first or last byte.
  at: fc.integer({ min: 0, max: 1_000_000 }).map((x) => x / 1_000_000),
  bit: fc.integer({ min: 0, max: 7 }),
  bytes: fc.uint8Array({ minLength: 1, maxLength: 80 })
})

function mutate (buf, m) {
  if (buf.length === 0) return buf
  const pos = Math.min(buf.length - 1, Math.floor(m.at * buf.length))
  const out = Buffer.from(buf)
  if (m.kind === 'flip') { out[pos] ^= 1 << m.bit; return out }
  if (m.kind === 'truncate') return out.subarray(0, pos)
  if (m.kind === 'zero') { out.fill(0, pos, Math.min(out.length, pos + m.bytes.length)); return out }
  Buffer.from(m.bytes).copy(out, pos, 0, Math.min(m.bytes.length, out.length - pos))
  return out
}

/**
 * Everything the library does with damaged files: open, read, iterate, verify, salvage. Every
 * record was acknowledged, so damage may be reported (a WalError) but never make records vanish:
 * a log that opens without salvage has the offsets it had, and reads yield them without gaps.
 */
async function exercise (files, offsets) {
  const disk = new SimDisk()
  for (const [p, buf] of files) disk.writeFileDurable(p, buf)
  const expectWalError = (err, what) => {
    if (!(err instanceof WalError)) throw new Error(`${what} threw a non-WalError: ${err?.stack ?? err}`)
  }
  const checkRecords = async (wal, salvaged = false) => {
    for (let p = 0; p < wal.partitions; p++) {
      const { start, end } = wal.offsets(p)
      if (!salvaged && (start !== offsets[p].start || end !== offsets[p].end)) {
        throw new Error(`partition ${p} opened as [${start}, ${end}), written as [${offsets[p].start}, ${offsets[p].end}): records lost without an error`)
      }
      let next = start
      try {
        for await (const rec of wal.iterate(p)) {
          if (!sameRecord(rec, p, rec.offset)) throw new Error(`partition ${p} offset ${rec.offset}: bytes that were never written`)
          if (rec.offset !== next) throw new Error(`partition ${p}: iterate skipped from ${next} to ${rec.offset} without an error`)
          next++
        }
      } catch (err) { if (!(err instanceof WalError)) throw err }
      for (const off of [start, Math.floor((start + end) / 2), end - 1]) {
        if (off < start || off >= end) continue
        try {
          const rec = await wal.read(p, off)
          if (!sameRecord(rec, p, off)) throw new Error(`read(${p}, ${off}) returned bytes that were never written`)
        } catch (err) { if (!(err instanceof WalError)) throw err }
      }
      // A cursor is one that was committed, or (after salvage) moved back to the cut.
      const c = wal.group('g').committed(p)
      if (c !== null && ![50, 7].includes(c) && !(salvaged && c === end)) throw new Error(`group cursor ${c} was never committed`)
    }
  }
  let wal = null
  try { wal = await WriteAhead.open(DIR, { io: disk.io }) } catch (err) { expectWalError(err, 'open') }
  if (wal !== null) { await checkRecords(wal); await wal.close() }
  let report = null
  try { report = await WriteAhead.verify(DIR, { io: disk.io }) } catch (err) { expectWalError(err, 'verify') }
  if (report !== null && !report.ok) {
    try { await WriteAhead.salvage(DIR, { io: disk.io }) } catch (err) { expectWalError(err, 'salvage') }
    try { wal = await WriteAhead.open(DIR, { io: disk.io }) } catch (err) { expectWalError(err, 'open after salvage'); wal = null }
    if (wal !== null) { await checkRecords(wal, true); await wal.close() }
  }
}

test('damaged segment, index, meta and mark files: never a crash, a hang, or unacknowledged bytes', async (t) => {
  const { files: base, offsets } = await baseImage()
  const names = [...base.keys()].sort()
  const corpus = fs.readdirSync(CORPUS).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(fs.readFileSync(path.join(CORPUS, f), 'utf8')))
  const arb = fc.tuple(fc.nat({ max: names.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 3 }))
  const property = fc.asyncProperty(arb, async ([fileIndex, muts]) => {
    const files = new Map(base)
    const name = names[fileIndex]
    let buf = files.get(name)
    for (const m of muts) buf = mutate(buf, m)
    files.set(name, buf)
    await exercise(files, offsets)
  })
  // Replay every failing input ever found first, then fresh ones.
  for (const entry of corpus) {
    const files = new Map(base)
    const name = names.find((n) => n.endsWith(entry.file)) ?? names[0]
    let buf = files.get(name)
    for (const m of entry.mutations) buf = mutate(buf, { ...m, bytes: Uint8Array.from(m.bytes) })
    files.set(name, buf)
    await exercise(files, offsets)
  }
  const out = await fc.check(property, { numRuns: RUNS, seed: process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED) })
  if (out.failed) {
    const [fileIndex, muts] = out.counterexample[0]
    const entry = { file: names[fileIndex].slice(DIR.length), mutations: muts.map((m) => ({ ...m, bytes: [...m.bytes] })), error: String(out.errorInstance?.message ?? out.error) }
    fs.writeFileSync(path.join(CORPUS, `${Date.now()}.json`), JSON.stringify(entry, null, 2) + '\n')
    t.fail(`fuzzing found a failure (saved to the corpus): ${entry.error}\n${JSON.stringify(entry)}`)
  }
  t.log(`${RUNS} random damages over ${names.length} files, ${corpus.length} corpus entries replayed`)
  t.pass()
})
