import test from 'ava'
import fs from 'node:fs'
import path from 'node:path'
import { crc32c } from '@node-rs/crc32'
import { WriteAhead, WalError, nodeFileIO } from '../dist/src/index.js'
import { tmpDir, collect, segmentFiles, partitionPath, small } from './helpers/tmp.js'

const SEAL_BYTES = 68

async function fill (dir, n, opts = small) {
  const wal = await WriteAhead.open(dir, opts)
  const values = []
  for (let i = 0; i < n; i++) {
    const batch = Array.from({ length: 10 }, (_, j) => `v${i * 10 + j}-${'p'.repeat(60)}`)
    values.push(...batch)
    await wal.appendBatch(0, batch)
  }
  await wal.close()
  return values
}

/** A log of 60 records whose second segment lost its seal, as a crash during rotation leaves it. */
async function unsealedOlderSegment (t) {
  const dir = tmpDir(t)
  const values = await fill(dir, 60)
  const segs = segmentFiles(dir)
  t.true(segs.length >= 3)
  const victim = partitionPath(dir, 0, segs[1])
  fs.truncateSync(victim, fs.statSync(victim).size - SEAL_BYTES)
  return { dir, values, victim }
}

/** Makes a segment header look as written before headers recorded the previous segment's end. */
function forgetPreviousEnd (file) {
  const buf = fs.readFileSync(file)
  buf.fill(0, 32, 60)
  buf.writeUInt32BE(crc32c(buf.subarray(0, 60)), 60)
  fs.writeFileSync(file, buf)
}

async function readAll (dir, opts = small) {
  const wal = await WriteAhead.open(dir, opts)
  const recs = await collect(wal.iterate(0))
  const offsets = wal.offsets(0)
  await wal.close()
  return { values: recs.map((r) => r.value.toString()), offsets, recs }
}

test('torn tail: garbage after the last durable batch is truncated', async (t) => {
  const dir = tmpDir(t)
  const values = await fill(dir, 5)
  const last = partitionPath(dir, 0, segmentFiles(dir).at(-1))
  const size = fs.statSync(last).size
  // Half a batch: a plausible header with a length running past the end, then noise.
  const torn = Buffer.alloc(30)
  torn.writeUInt32BE(500, 0)
  torn[8] = 0x57
  fs.appendFileSync(last, torn)
  const r = await readAll(dir)
  t.deepEqual(r.values, values)
  t.is(fs.statSync(last).size, size, 'the torn bytes were cut off')
  const wal = await WriteAhead.open(dir, small)
  t.is(await wal.append(0, 'next'), values.length)
  await wal.close()
})

test('a zero-filled tail is not parsed as records', async (t) => {
  const dir = tmpDir(t)
  const values = await fill(dir, 3)
  const last = partitionPath(dir, 0, segmentFiles(dir).at(-1))
  fs.appendFileSync(last, Buffer.alloc(8192))
  const r = await readAll(dir)
  t.deepEqual(r.values, values)
  t.is(r.offsets.end, values.length)
})

test('an older segment that was never sealed (crash mid-rotation) is sealed on open', async (t) => {
  const { dir, values, victim } = await unsealedOlderSegment(t)
  fs.rmSync(victim.replace(/\.log$/, '.index'), { force: true })
  const r = await readAll(dir)
  t.deepEqual(r.values, values)
  const sealed = fs.readFileSync(victim)
  t.is(sealed[sealed.length - SEAL_BYTES + 9] & 2, 2, 'the segment ends with a seal again')
})

test('an older segment cut at a batch boundary before it was sealed is CORRUPTED on open, not a hole in the offsets', async (t) => {
  // Cut at a batch boundary, the file scans as valid: only the next segment's header, which
  // recorded where this one's data ended, shows that acknowledged records are gone.
  const { dir, victim } = await unsealedOlderSegment(t)
  const before = fs.readFileSync(victim)
  const starts = batchStarts(before)
  t.true(starts.length >= 2)
  fs.truncateSync(victim, starts.at(-1))
  const err = await t.throwsAsync(WriteAhead.open(dir, small), { instanceOf: WalError, code: 'CORRUPTED' })
  t.is(err.details.segment, path.basename(victim))
  t.is(err.details.position, starts.at(-1))
  t.regex(err.message, /acknowledged data lost/)
  t.is(fs.statSync(victim).size, starts.at(-1), 'nothing was cut or sealed')
  // A read-only open says the same, where it used to read a hole in the offsets quietly.
  const ro = await t.throwsAsync(WriteAhead.open(dir, { readOnly: true }), { instanceOf: WalError, code: 'CORRUPTED' })
  t.is(ro.details.position, starts.at(-1))
  t.regex(ro.message, /acknowledged data lost/)
  const report = await WriteAhead.verify(dir)
  t.false(report.ok)
  t.like(report.problems[0], { segment: path.basename(victim), position: starts.at(-1) })
  t.regex(report.problems[0].reason, /data lost/)
  // Whole again, it opens with every record.
  fs.writeFileSync(victim, before)
  t.is((await readAll(dir)).offsets.end, 600)
})

test('a crash after sealing and before the next segment exists', async (t) => {
  const dir = tmpDir(t)
  const values = await fill(dir, 40)
  const segs = segmentFiles(dir)
  // Keep only the sealed segments, as if the process died right after sealing.
  const lastSealed = segs.at(-2)
  const base = Number(lastSealed.slice(0, 20))
  fs.rmSync(partitionPath(dir, 0, segs.at(-1)))
  fs.rmSync(partitionPath(dir, 0, 'durable'))
  const survivors = values.slice(0, Number(segs.at(-1).slice(0, 20)))
  const r = await readAll(dir)
  t.deepEqual(r.values, survivors)
  t.true(r.offsets.end > base)
  const wal = await WriteAhead.open(dir, small)
  t.is(await wal.append(0, 'after'), survivors.length)
  await wal.close()
  const again = await readAll(dir)
  t.deepEqual(again.values, [...survivors, 'after'])
})

test('an empty or partial segment header is removed when it holds nothing acknowledged', async (t) => {
  for (const bytes of [0, 20, 63]) {
    const dir = tmpDir(t, `h${bytes}`)
    const values = await fill(dir, 3)
    const end = values.length
    fs.writeFileSync(partitionPath(dir, 0, String(end).padStart(20, '0') + '.log'), Buffer.alloc(bytes, 7))
    const r = await readAll(dir)
    t.deepEqual(r.values, values)
    t.false(fs.existsSync(partitionPath(dir, 0, String(end).padStart(20, '0') + '.log')))
  }
})

test('stray files in the directory are left alone and ignored', async (t) => {
  const dir = tmpDir(t)
  const values = await fill(dir, 3)
  const strays = [partitionPath(dir, 0, 'notes.txt'), partitionPath(dir, 0, '123.log'), partitionPath(dir, 0, 'x.index'), path.join(dir, 'README')]
  for (const f of strays) fs.writeFileSync(f, 'stray')
  fs.mkdirSync(partitionPath(dir, 0, 'subdir'))
  const r = await readAll(dir)
  t.deepEqual(r.values, values)
  for (const f of strays) t.is(fs.readFileSync(f, 'utf8'), 'stray')
})

test('a flipped bit in a sealed segment is CORRUPTED on read, naming where', async (t) => {
  const dir = tmpDir(t)
  await fill(dir, 60)
  const segs = segmentFiles(dir)
  t.true(segs.length >= 3)
  const file = partitionPath(dir, 0, segs[1])
  const buf = fs.readFileSync(file)
  buf[200] ^= 0x10
  fs.writeFileSync(file, buf)
  const wal = await WriteAhead.open(dir, small)
  const base = Number(segs[1].slice(0, 20))
  const err = await t.throwsAsync(collect(wal.iterate(0, { from: base })), { instanceOf: WalError, code: 'CORRUPTED' })
  t.is(err.details.partition, 0)
  t.is(err.details.segment, segs[1])
  t.true(err.details.position <= 200)
  await t.throwsAsync(wal.read(0, base + 1), { code: 'CORRUPTED' })
  t.is((await wal.read(0, 0)).offset, 0, 'other segments still read')
  await wal.close()
})

test('an older segment left unsealed is opened as a sealed one: a flipped payload bit is CORRUPTED on read, not on open', async (t) => {
  const { dir, values, victim } = await unsealedOlderSegment(t)
  const buf = fs.readFileSync(victim)
  const starts = batchStarts(buf)
  buf[starts[1] + 80] ^= 0x10 // inside a record of the second batch, past its header
  fs.writeFileSync(victim, buf)
  const wal = await WriteAhead.open(dir, small)
  t.is(wal.offsets(0).end, values.length, 'open walked the structure, which still matches the next segment\'s record')
  const base = Number(path.basename(victim).slice(0, 20))
  const err = await t.throwsAsync(collect(wal.iterate(0, { from: base })), { instanceOf: WalError, code: 'CORRUPTED' })
  t.is(err.details.segment, path.basename(victim))
  t.is(err.details.position, starts[1])
  t.is((await wal.read(0, 0)).value.toString(), values[0], 'other segments still read')
  await wal.close()
  t.false((await WriteAhead.verify(dir)).ok, 'verify reads every checksum')
})

test('an older segment left unsealed by a crash costs open its batch headers, not its records', async (t) => {
  // Batches above 64 KiB: the walk reads each header alone (scan.ts), as below a durable mark.
  const dir = tmpDir(t)
  const opts = { segmentBytes: 1024 * 1024, preallocate: false }
  const wal = await WriteAhead.open(dir, opts)
  const value = Buffer.alloc(100, 1)
  for (let i = 0; i < 30; i++) await wal.appendBatch(0, Array.from({ length: 1000 }, () => value))
  await wal.close()
  const segs = segmentFiles(dir)
  t.true(segs.length >= 3)
  const victim = partitionPath(dir, 0, segs[1])
  fs.truncateSync(victim, fs.statSync(victim).size - SEAL_BYTES)
  const size = fs.statSync(victim).size
  // Bytes read from the victim during open, through the I/O layer.
  const fds = new Set()
  let read = 0
  const io = {
    ...nodeFileIO,
    open: (file, mode) => { const fd = nodeFileIO.open(file, mode); if (file === victim) fds.add(fd); return fd },
    read: (fd, buf, off, len, pos) => { const n = nodeFileIO.read(fd, buf, off, len, pos); if (fds.has(fd)) read += n; return n }
  }
  const reopened = await WriteAhead.open(dir, { ...opts, io })
  t.is(reopened.offsets(0).end, 30_000)
  t.true(read < size / 10, `open read ${read} of its ${size} bytes`)
  await reopened.close()
  const sealed = fs.readFileSync(victim)
  t.is(sealed[sealed.length - SEAL_BYTES + 9] & 2, 2, 'and sealed it')
  t.true((await WriteAhead.verify(dir)).ok)
})

/** The positions of the batches of a segment file, by walking their length fields. */
function batchStarts (buf) {
  const starts = []
  for (let at = 64; at + 4 <= buf.length && buf.readUInt32BE(at) !== 0; at += buf.readUInt32BE(at)) starts.push(at)
  return starts
}

/** Flips one bit of the open segment's file at `pick(batchStarts)`, or cuts the file at minus that; returns what is needed to check. */
function flipInOpenSegment (dir, pick) {
  const file = partitionPath(dir, 0, segmentFiles(dir).at(-1))
  const before = fs.readFileSync(file)
  const buf = Buffer.from(before)
  const at = pick(batchStarts(buf))
  // A negative position means: cut the file there instead.
  if (at < 0) fs.writeFileSync(file, buf.subarray(0, -at))
  else { buf[at] ^= 0x01; fs.writeFileSync(file, buf) }
  return { file, before, at }
}

test('a flipped bit in the payload of an acknowledged batch of the open segment is CORRUPTED on read, never truncated', async (t) => {
  // Below the durable mark, open walks only the structure: the checksums are the reads' to check.
  for (const [name, pick, offset] of [['first batch', (starts) => starts[0] + 100, 3], ['last batch', (starts) => starts.at(-1) + 100, 25]]) {
    const dir = tmpDir(t, name.replace(' ', '-'))
    const values = await fill(dir, 3)
    const { file, before, at } = flipInOpenSegment(dir, pick)
    // A read-only open agrees with the writer's: the same records, the damage found by the read.
    const ro = await WriteAhead.open(dir, { readOnly: true })
    t.is(ro.offsets(0).end, 30, `${name}: read-only, every acknowledged record is still counted`)
    await t.throwsAsync(ro.read(0, offset), { code: 'CORRUPTED' }, `${name}: read-only`)
    await ro.close()
    const wal = await WriteAhead.open(dir, small)
    t.is(wal.offsets(0).end, 30, `${name}: every acknowledged record is still counted`)
    t.is(fs.statSync(file).size, before.length, `${name}: nothing was cut away`)
    const err = await t.throwsAsync(wal.read(0, offset), { instanceOf: WalError, code: 'CORRUPTED' }, name)
    t.is(err.details.segment, segmentFiles(dir).at(-1))
    t.true(err.details.position <= at, `${name}: the error names where the damaged batch starts`)
    await t.throwsAsync(collect(wal.iterate(0)), { code: 'CORRUPTED' }, name)
    await wal.close()
    t.false((await WriteAhead.verify(dir)).ok, name)
    fs.writeFileSync(file, before)
    t.deepEqual((await readAll(dir)).values, values, `${name}: with the bit restored, every record reads back`)
  }
})

test('damage to a batch header of the open segment is CORRUPTED on open, never truncated', async (t) => {
  const cases = {
    // A length that no longer lands on the next batch.
    'first batch length': (starts) => starts[0] + 2,
    // A base offset that no longer follows the batch before.
    'second batch base offset': (starts) => starts[1] + 19,
    // The last batch's end offset no longer agrees with the durable mark's.
    'last batch offset delta': (starts) => starts.at(-1) + 23,
    // The file ends inside the last batch: its header alone is intact.
    'file cut short': (starts) => -starts.at(-1) - 100
  }
  for (const [name, pick] of Object.entries(cases)) {
    const dir = tmpDir(t, name.replaceAll(' ', '-'))
    await fill(dir, 3)
    const { file, before, at } = flipInOpenSegment(dir, pick)
    const err = await t.throwsAsync(WriteAhead.open(dir, small), { instanceOf: WalError, code: 'CORRUPTED' }, name)
    t.is(err.details.partition, 0)
    t.is(err.details.segment, segmentFiles(dir).at(-1))
    t.is(typeof err.details.position, 'number')
    t.is(fs.statSync(file).size, at < 0 ? -at : before.length, `${name}: nothing was cut away`)
    // The lock was released: after fixing the bit the log opens.
    fs.writeFileSync(file, before)
    const wal = await WriteAhead.open(dir, small)
    t.is(wal.offsets(0).end, 30)
    await wal.close()
  }
})

test('an open that fails with CORRUPTED leaves no file open', async (t) => {
  // The caller tries again, salvages, or keeps running: each failed open used to keep the
  // partition's durable-mark file open.
  const dir = tmpDir(t)
  await fill(dir, 3)
  flipInOpenSegment(dir, (starts) => starts[0] + 2)
  const open = new Set()
  const io = {
    ...nodeFileIO,
    open (p, mode) { const fd = nodeFileIO.open(p, mode); open.add(fd); return fd },
    close (fd) { open.delete(fd); nodeFileIO.close(fd) }
  }
  await t.throwsAsync(WriteAhead.open(dir, { ...small, io }), { code: 'CORRUPTED' })
  t.is(open.size, 0, 'every descriptor the failed open took was closed')
})

test('a trim survives restart and offsets are never reused', async (t) => {
  const dir = tmpDir(t)
  await fill(dir, 40)
  let wal = await WriteAhead.open(dir, small)
  const start = await wal.trimBefore(0, 200)
  t.true(start > 0 && start <= 200)
  t.deepEqual(wal.offsets(0), { start, end: 400, pending: 400 })
  await t.throwsAsync(wal.read(0, start - 1), { code: 'OFFSET_OUT_OF_RANGE' })
  await t.throwsAsync(collect(wal.iterate(0, { from: 0 })), { code: 'OFFSET_TRIMMED' })
  await wal.close()
  wal = await WriteAhead.open(dir, small)
  t.deepEqual(wal.offsets(0), { start, end: 400, pending: 400 })
  t.is(await wal.append(0, 'n'), 400)
  // Trimming everything keeps the open segment, so the next offset is still known.
  t.is(await wal.trimBefore(0, 401), Number(segmentFiles(dir).at(-1).slice(0, 20)))
  await wal.close()
  wal = await WriteAhead.open(dir, small)
  t.is(await wal.append(0, 'm'), 401)
  await wal.close()
})

test('a restart resumes offsets exactly, in every partition', async (t) => {
  const dir = tmpDir(t)
  let wal = await WriteAhead.open(dir, { ...small, partitions: 3 })
  for (let i = 0; i < 300; i++) await wal.append(i % 3, `r${i}`)
  await wal.close()
  for (let round = 0; round < 3; round++) {
    wal = await WriteAhead.open(dir, small)
    for (let p = 0; p < 3; p++) t.is(await wal.append(p, 'x'), 100 + round)
    await wal.close()
  }
})

test('retention by size deletes old segments while running', async (t) => {
  const dir = tmpDir(t)
  const { retentionChannel } = await import('../dist/src/index.js')
  const wal = await WriteAhead.open(dir, { ...small, retention: { maxBytes: 64 * 1024 } })
  const deleted = new Promise((resolve) => {
    const onEvent = (msg) => { if (msg.dir === dir) { retentionChannel.unsubscribe(onEvent); resolve(msg) } }
    retentionChannel.subscribe(onEvent)
  })
  for (let i = 0; i < 200; i++) await wal.appendBatch(0, Array.from({ length: 10 }, () => 'r'.repeat(80)))
  const msg = await deleted
  t.is(msg.reason, 'retention')
  t.true(wal.offsets(0).start > 0)
  const bytes = segmentFiles(dir).reduce((n, f) => n + fs.statSync(partitionPath(dir, 0, f)).size, 0)
  t.true(bytes <= 64 * 1024 + 16 * 1024, `${bytes} bytes kept`)
  const recs = await collect(wal.iterate(0, { from: wal.offsets(0).start }))
  t.is(recs.at(-1).offset, 1999)
  await wal.close()
})

test('every diagnostics channel names the log directory the same way, however it was written', async (t) => {
  const dir = tmpDir(t)
  const { commitChannel, rotateChannel, retentionChannel } = await import('../dist/src/index.js')
  const seen = new Map()
  const on = (name) => (msg) => { if (path.join(msg.dir) === dir) seen.set(name, msg.dir) }
  const subs = [['commit', commitChannel], ['rotate', rotateChannel], ['retention', retentionChannel]].map(([name, ch]) => { const fn = on(name); ch.subscribe(fn); return () => ch.unsubscribe(fn) })
  t.teardown(() => { for (const off of subs) off() })
  const wal = await WriteAhead.open(`${dir}/./`, { ...small, retention: { maxBytes: 64 * 1024 } })
  for (let i = 0; i < 200 && !seen.has('retention'); i++) await wal.appendBatch(0, Array.from({ length: 10 }, () => 'r'.repeat(80)))
  await wal.close()
  t.deepEqual([...seen.keys()].sort(), ['commit', 'retention', 'rotate'])
  t.deepEqual(new Set(seen.values()), new Set([dir]))
})

test('retention by age deletes segments whose records are older than maxAgeMs', async (t) => {
  const dir = tmpDir(t)
  const { retentionChannel } = await import('../dist/src/index.js')
  const wal = await WriteAhead.open(dir, { ...small, retention: { maxAgeMs: 60_000 } })
  const old = Date.now() - 3_600_000
  for (let i = 0; i < 30; i++) await wal.appendBatch(0, Array.from({ length: 10 }, () => ({ value: 'o'.repeat(100), timestamp: old })))
  const oldEnd = wal.offsets(0).end
  const deleted = new Promise((resolve) => {
    const onEvent = (msg) => { if (msg.dir === dir) { retentionChannel.unsubscribe(onEvent); resolve(msg) } }
    retentionChannel.subscribe(onEvent)
  })
  for (let i = 0; i < 30; i++) await wal.appendBatch(0, Array.from({ length: 10 }, () => 'n'.repeat(100)))
  await deleted
  const { start } = wal.offsets(0)
  t.true(start > 0 && start <= oldEnd, `start ${start}`)
  await wal.close()
})

for (const [when, nth] of [['it is listed', 1], ['it is scanned', 2]]) {
  test(`verify while the writer trims: a segment deleted before ${when} is not checked, nor damage, nor an error`, async (t) => {
    const dir = tmpDir(t)
    const wal = await WriteAhead.open(dir, small)
    for (let i = 0; i < 100; i++) await wal.appendBatch(0, Array.from({ length: 10 }, () => 'v'.repeat(60)))
    const before = segmentFiles(dir).length
    // The writer's trim runs in the middle of verify: at verify's nth open of the first segment.
    const first = partitionPath(dir, 0, segmentFiles(dir)[0])
    let opens = 0
    let trimmed = null
    const io = {
      ...nodeFileIO,
      open (p, mode) {
        // trimBefore deletes synchronously; its promise only reports the new start.
        if (p === first && ++opens === nth) trimmed = wal.trimBefore(0, 500)
        return nodeFileIO.open(p, mode)
      }
    }
    const report = await WriteAhead.verify(dir, { io })
    t.true(await trimmed > 0, 'segments were trimmed during verify')
    t.true(segmentFiles(dir).length < before)
    t.true(report.ok, JSON.stringify(report.problems))
    const after = await WriteAhead.verify(dir)
    t.is(report.segments, after.segments, 'what is left was checked, and only that')
    t.is(report.records, after.records)
    await wal.close()
  })
}

test('retention is applied at open: a writer that fills no segment and exits before the timer still deletes what has expired', async (t) => {
  const dir = tmpDir(t)
  const old = Date.now() - 3_600_000
  let wal = await WriteAhead.open(dir, small)
  for (let i = 0; i < 60; i++) await wal.appendBatch(0, Array.from({ length: 10 }, () => ({ value: 'o'.repeat(100), timestamp: old })))
  await wal.appendBatch(0, ['fresh'])
  const sealed = wal.segments(0).filter((s) => s.sealed)
  t.true(sealed.length >= 2)
  await wal.close()
  // The timer's first tick is a second away (maxAgeMs / 4, at most 1000 ms); nothing here waits for it.
  wal = await WriteAhead.open(dir, { ...small, retention: { maxAgeMs: 60_000 } })
  t.true(wal.offsets(0).start >= sealed.at(-1).end, `start ${wal.offsets(0).start}`)
  t.is(segmentFiles(dir).length, 1, 'only the open segment is left')
  await wal.close()
})

test('verify finds a flipped bit; salvage keeps the valid prefix and quarantines the rest', async (t) => {
  const dir = tmpDir(t)
  const values = await fill(dir, 60)
  const w = await WriteAhead.open(dir, small)
  await w.group('ahead').commit(0, values.length)
  await w.group('behind').commit(0, 1)
  await w.close()
  const clean = await WriteAhead.verify(dir)
  t.true(clean.ok)
  t.true(clean.records >= values.length, "every record was scanned (meta records included)")
  t.is(clean.problems.length, 0)
  const segs = segmentFiles(dir)
  const file = partitionPath(dir, 0, segs[1])
  const buf = fs.readFileSync(file)
  buf[600] ^= 0x04
  fs.writeFileSync(file, buf)
  const progress = []
  const report = await WriteAhead.verify(dir, { onProgress: (done, total) => progress.push([done, total]) })
  t.false(report.ok)
  t.is(report.problems.length, 1)
  const [problem] = report.problems
  t.is(problem.partition, 0)
  t.is(problem.segment, segs[1])
  t.true(problem.position <= 600 && problem.position >= 64)
  t.true(problem.offset >= Number(segs[1].slice(0, 20)))
  t.deepEqual(progress.at(-1), [report.bytes, report.bytes])

  const actions = await WriteAhead.salvage(dir)
  t.is(actions.length, 1)
  t.is(actions[0].offset, problem.offset)
  t.deepEqual(actions[0].groupsMoved, ['ahead'], 'a cursor past the cut is moved back to it')
  t.true(actions[0].quarantined.length >= 2)
  for (const q of actions[0].quarantined) t.true(fs.existsSync(q))
  t.true((await WriteAhead.verify(dir)).ok)
  const r = await readAll(dir)
  t.deepEqual(r.values, values.slice(0, problem.offset))
  const wal = await WriteAhead.open(dir, small)
  t.is(wal.group('ahead').committed(0), problem.offset)
  t.is(wal.group('behind').committed(0), 1)
  t.is(await wal.append(0, 'after repair'), problem.offset)
  await wal.close()
})

test('a torn seal on an older segment (power lost while sealing) heals on open', async (t) => {
  // Also for segments written before headers recorded the previous segment's end: there the
  // seal's place is found by the shape of what follows the last valid batch.
  for (const recorded of [true, false]) {
    const dir = tmpDir(t, `wal-${recorded}`)
    const values = await fill(dir, 60)
    const segs = segmentFiles(dir)
    if (!recorded) forgetPreviousEnd(partitionPath(dir, 0, segs[1]))
    const victim = partitionPath(dir, 0, segs[0])
    const buf = fs.readFileSync(victim)
    buf.fill(0xa5, buf.length - SEAL_BYTES + 10, buf.length - 20)
    fs.writeFileSync(victim, buf)
    const r = await readAll(dir)
    t.deepEqual(r.values, values)
    t.true((await WriteAhead.verify(dir)).ok)
  }
})

test('a checkpoint batch that lost its checkpoint bit below the durable mark is CORRUPTED on open, not an older value', async (t) => {
  const dir = tmpDir(t)
  let wal = await WriteAhead.open(dir, small)
  await wal.appendBatch(0, ['a'], { checkpoint: { name: 'pos', value: 'first' } })
  await wal.appendBatch(0, ['b'], { checkpoint: { name: 'pos', value: 'second' } })
  await wal.appendBatch(0, ['c'])
  await wal.close()
  // Bit 0 of the attributes (byte 9) marks the checkpoint section of the second batch.
  const { file, before } = flipInOpenSegment(dir, (starts) => starts[1] + 9)
  const err = await t.throwsAsync(WriteAhead.open(dir, small), { instanceOf: WalError, code: 'CORRUPTED' })
  t.is(err.details.offset, 1)
  t.is(fs.statSync(file).size, before.length, 'nothing was cut away')
  fs.writeFileSync(file, before)
  wal = await WriteAhead.open(dir, small)
  t.is(wal.checkpoint(0, 'pos').toString(), 'second')
  await wal.close()
})

test('damage inside acknowledged data is CORRUPTED whatever sync mode the log is reopened with', async (t) => {
  for (const sync of ['interval', 'never']) {
    const dir = tmpDir(t, `reopen-${sync}`)
    await fill(dir, 3)
    const { file, before } = flipInOpenSegment(dir, (starts) => starts.at(-1) + 23)
    await t.throwsAsync(WriteAhead.open(dir, { ...small, sync }), { code: 'CORRUPTED' }, sync)
    t.is(fs.statSync(file).size, before.length, `${sync}: nothing was cut away`)
  }
})

test('zeros inside acknowledged data are CORRUPTED on open, not a shorter log', async (t) => {
  const dir = tmpDir(t)
  await fill(dir, 3)
  const file = partitionPath(dir, 0, segmentFiles(dir).at(-1))
  const before = fs.readFileSync(file)
  const buf = Buffer.from(before)
  buf.fill(0, 64, 64 + 512) // a lost sector right after the segment header
  fs.writeFileSync(file, buf)
  const err = await t.throwsAsync(WriteAhead.open(dir, small), { code: 'CORRUPTED' })
  t.regex(err.message, /inside acknowledged data/)
  t.is(fs.statSync(file).size, before.length, 'nothing was cut away')
  // A read-only open used to stop there quietly, a shorter log than the writer serves.
  const ro = await t.throwsAsync(WriteAhead.open(dir, { readOnly: true }), { code: 'CORRUPTED' })
  t.regex(ro.message, /inside acknowledged data/)
})

test('salvage of a segment whose header is damaged leaves a log that opens', async (t) => {
  const dir = tmpDir(t)
  const values = await fill(dir, 60)
  const segs = segmentFiles(dir)
  t.true(segs.length >= 2)
  const last = partitionPath(dir, 0, segs.at(-1))
  const buf = fs.readFileSync(last)
  buf.fill(0xee, 0, 40) // the segment header
  fs.writeFileSync(last, buf)
  t.false((await WriteAhead.verify(dir)).ok)
  const actions = await WriteAhead.salvage(dir)
  t.is(actions.length, 1)
  const base = Number(segs.at(-1).slice(0, 20))
  const wal = await WriteAhead.open(dir, small)
  t.is(wal.offsets(0).end, base, 'the log ends where the damaged segment began')
  t.deepEqual((await collect(wal.iterate(0))).map((r) => r.value.toString()), values.slice(0, base))
  t.is(await wal.append(0, 'after repair'), base)
  await wal.close()
})

test('verify and repair accept what a crash during rotation leaves (an older segment without its seal)', async (t) => {
  const { dir, values } = await unsealedOlderSegment(t)
  const report = await WriteAhead.verify(dir)
  t.deepEqual(report.problems, [])
  t.true(report.ok)
  t.deepEqual(await WriteAhead.salvage(dir), [], 'repair cuts nothing')
  t.deepEqual((await readAll(dir)).values, values)
})
