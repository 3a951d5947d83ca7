import test from 'ava'
import { pipeline as corePipeline, Readable as CoreReadable } from 'node:stream'
import { promisify } from 'node:util'
import fs from 'node:fs'
import { Readable as StreamxReadable, pipeline as streamxPipeline } from 'streamx'
import { WriteAhead, WalError } from '../dist/src/index.js'
import { appendInOrder } from '../dist/src/streams/append-pieces.js'
import { tmpDir, collect, segmentFiles, partitionPath } from './helpers/tmp.js'
import { faultyIO, notMeta } from './helpers/faulty-io.js'

const values = (n) => Array.from({ length: n }, (_, i) => `rec-${i}`)

async function contents (wal, p) {
  return (await collect(wal.iterate(p))).map((r) => r.value.toString())
}

test('pipeline from node:stream with a core Readable.from source: finished means durable', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  const ws = wal.writable(0)
  await promisify(corePipeline)(CoreReadable.from(values(5000)), ws)
  t.deepEqual(wal.offsets(0), { start: 0, end: 5000, pending: 5000 }, 'every record was durable when the callback fired')
  t.deepEqual(await contents(wal, 0), values(5000))
  await wal.close()
})

test("streamx pipeline with a streamx source of record objects", async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  const src = StreamxReadable.from(Array.from({ length: 300 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, headers: [['h', 'x'], ['h', 'y']] })))
  await new Promise((resolve, reject) => streamxPipeline(src, wal.writable(0), (err) => err ? reject(err) : resolve()))
  const recs = await collect(wal.iterate(0))
  t.is(recs.length, 300)
  t.is(recs[299].key.toString(), 'k299')
  t.deepEqual(recs[0].headers.map((h) => h.value.toString()), ['x', 'y'])
  await wal.close()
})

test('an async generator source', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  async function * gen () {
    for (let i = 0; i < 1000; i++) {
      if (i % 100 === 0) await new Promise((resolve) => setImmediate(resolve))
      yield Buffer.from(`g${i}`)
    }
  }
  await promisify(corePipeline)(gen, wal.writable(0))
  t.is(wal.offsets(0).end, 1000)
  t.is((await wal.read(0, 999)).value.toString(), 'g999')
  await wal.close()
})

test('queued chunks become one commit each (writev)', async (t) => {
  const io = faultyIO()
  const wal = await WriteAhead.open(tmpDir(t), { io })
  await wal.append(0, 'warm') // creates the segment
  io.log.length = 0
  const ws = wal.writable(0)
  for (const v of values(1000)) ws.write(v)
  ws.end()
  await new Promise((resolve) => ws.on('finish', resolve))
  t.is(wal.offsets(0).end, 1001)
  t.true(io.log.length <= 3, `${io.log.length} syncs for 1000 writes`)
  await wal.close()
})

test('more queued than one batch may hold is split by size, in order, into full batches', async (t) => {
  const maxBatchBytes = 4096
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir, { maxBatchBytes })
  await wal.append(0, 'warm')
  const ws = wal.writable(0, { highWaterMark: 1024 * 1024 })
  const big = Array.from({ length: 2000 }, (_, i) => `${i}:${'v'.repeat(90)}`)
  for (const v of big) ws.write(v)
  ws.end()
  await new Promise((resolve) => ws.on('finish', resolve))
  t.deepEqual((await contents(wal, 0)).slice(1), big, 'every record, in order')
  await wal.close()
  // Walk the segments' batches by their length fields (the first 4 bytes of each, after the
  // 64-byte segment header): none may exceed maxBatchBytes, and they are cut near it, not to dust.
  const lengths = []
  for (const file of segmentFiles(dir)) {
    const seg = fs.readFileSync(partitionPath(dir, 0, file))
    for (let pos = 64; pos + 4 <= seg.length && seg.readUInt32BE(pos) > 0; pos += seg.readUInt32BE(pos)) lengths.push(seg.readUInt32BE(pos))
  }
  const total = lengths.reduce((a, b) => a + b, 0)
  t.true(lengths.every((n) => n <= maxBatchBytes), `largest batch ${Math.max(...lengths)} bytes`)
  t.true(lengths.length <= 1.5 * total / maxBatchBytes, `${lengths.length} batches for ${total} bytes`)
})

// 20 records of 9000 UTF-8 bytes (3000 UTF-16 units) among small ones, 64 KiB batches.
const euros = () => Array.from({ length: 200 }, (_, i) => i >= 140 && i < 160 ? '€'.repeat(3000) : `r${i}`)

test('a queue of multi-byte strings over maxBatchBytes is appended whole, in order', async (t) => {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir, { segmentBytes: 256 * 1024 })
  t.is(wal.options.maxBatchBytes, 64 * 1024)
  await promisify(corePipeline)(CoreReadable.from(euros()), wal.writable(0, { highWaterMark: 64 * 1024 * 1024 }))
  t.deepEqual(await contents(wal, 0), euros())
  await wal.close()
})

test('a record no batch can hold fails the stream, and nothing after it is appended', async (t) => {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir, { segmentBytes: 256 * 1024 })
  // A 1-byte payload (within maxRecordBytes) whose 33,000 headers encode to more than 64 KiB.
  const unfit = { value: 'x', headers: Array.from({ length: 33_000 }, () => ['', null]) }
  const before = Array.from({ length: 50 }, (_, i) => `${i}:${'a'.repeat(2000)}`)
  const after = Array.from({ length: 50 }, (_, i) => `after-${i}`)
  const ws = wal.writable(0, { highWaterMark: 64 * 1024 * 1024 })
  const err = await t.throwsAsync(promisify(corePipeline)(CoreReadable.from([...before, unfit, ...after]), ws))
  t.is(err.code, 'BATCH_TOO_LARGE')
  await wal.close() // waits for any append still in flight
  const again = await WriteAhead.open(dir)
  t.deepEqual(await contents(again, 0), before, 'exactly the records before the one that failed')
  await again.close()
})

test('a refused chunk is named by its place in the stream, counted across writes', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  // A small highWaterMark: the 3,000 chunks before the bad one go in many writevs.
  const ws = wal.writable(0, { highWaterMark: 1024 })
  const err = await t.throwsAsync(promisify(corePipeline)(CoreReadable.from([...values(3000), 42, 'after']), ws))
  t.is(err.code, 'INVALID_RECORD')
  t.is(err.details.index, 3000)
  t.regex(err.message, /got number \(chunk 3000 written to the stream\)$/)
  const recs = await contents(wal, 0)
  t.deepEqual(recs, values(recs.length), 'a prefix of what came before it')
  await wal.close()
})

test('a write after end() fails the stream instead of being dropped', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  const ws = wal.writable(0)
  ws.write('a')
  ws.end()
  await new Promise((resolve) => ws.on('close', resolve))
  // Finished and closed: no stream is left to fail, so the call itself throws.
  const err = t.throws(() => ws.write('late'))
  t.is(err.code, 'INVALID_ARGUMENT')
  t.regex(err.message, /write\(\) after end\(\).*not appended/)
  t.deepEqual(await contents(wal, 0), ['a'])
  // Still finishing: the stream fails, so 'finish' never claims a record it dropped.
  const ws2 = wal.writable(0)
  const failed = new Promise((resolve) => ws2.on('error', resolve))
  let finished = false
  ws2.on('finish', () => { finished = true })
  ws2.end('b')
  t.false(ws2.write('c'))
  t.false(ws2.write('d'), 'failing, not closed: refused, not thrown')
  t.is((await failed).code, 'INVALID_ARGUMENT')
  t.false(finished)
  t.deepEqual((await contents(wal, 0)).filter((v) => v === 'c'), [], 'the late record was not appended')
  await wal.close()
})

test('appendInOrder halves a piece the log refuses and stops at a record refused alone', async (t) => {
  // A log that refuses batches of more than 3 records, which the size estimate cannot see
  // (as it cannot see a real batch's varints exactly), and always refuses 'bad'.
  const log = []
  const calls = []
  const host = {
    maxBatchBytes: 1 << 20,
    appendBatch: async (p, inputs) => {
      calls.push(inputs.length)
      if (inputs.length > 3 || inputs.includes('bad')) throw new WalError('BATCH_TOO_LARGE', 'too large')
      log.push(...inputs)
      return log.length - inputs.length
    }
  }
  const pieces = []
  const ten = Array.from({ length: 10 }, (_, i) => `v${i}`)
  await appendInOrder(host, 0, ten, (first, count) => pieces.push([first, count]), 0, 'chunk #')
  t.deepEqual(log, ten)
  t.deepEqual(calls, [10, 5, 2, 3, 5, 2, 3], 'refused whole, then halved until each half is taken')
  t.deepEqual(pieces, [[0, 2], [2, 3], [5, 2], [7, 3]], 'each piece told once durable, in order')
  log.length = 0
  const err = await t.throwsAsync(appendInOrder(host, 0, ['a', 'b', 'c', 'd', 'bad', 'e', 'f'], undefined, 100, 'chunk # of the stream'))
  t.is(err.code, 'BATCH_TOO_LARGE')
  t.deepEqual(log, ['a', 'b', 'c', 'd'], 'a prefix, never a record after the refused one')
  t.is(err.details.index, 104, 'named by its place: the queue starts at 100, and it is the fifth')
  t.is(err.message, 'too large (chunk 104 of the stream)')
})

test('writable options are checked', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  for (const bad of [null, 'big', [], { highWaterMark: -1 }, { highWaterMark: 0 }, { highWaterMark: 1.5 }, { highWaterMark: '1024' }, { highWaterMark: NaN }, { highwaterMark: 1024 }]) {
    const err = t.throws(() => wal.writable(0, bad), undefined, JSON.stringify(bad))
    t.true(err instanceof WalError, String(err))
    t.is(err.code, 'INVALID_OPTION', err.message)
  }
  t.regex(t.throws(() => wal.writable(0, { highWaterMark: -1 })).message, /highWaterMark: must be a positive integer number of bytes, got -1/)
  t.regex(t.throws(() => wal.writable(0, { highwaterMark: 1 })).message, /highwaterMark: unknown option/)
  const ws = wal.writable(0, { highWaterMark: 1 })
  await promisify(corePipeline)(CoreReadable.from(['a', 'b']), ws)
  await promisify(corePipeline)(CoreReadable.from(['c']), wal.writable(0, {}))
  await promisify(corePipeline)(CoreReadable.from(['d']), wal.writable(0, undefined))
  t.deepEqual(await contents(wal, 0), ['a', 'b', 'c', 'd'])
  await wal.close()
})

test('backpressure counts real bytes, not 1 KiB per object', (t) => {
  return WriteAhead.open(tmpDir(t)).then(async (wal) => {
    const ws = wal.writable(0, { highWaterMark: 1000 })
    let accepted = 0
    while (ws.write({ value: 'x'.repeat(10) })) accepted++
    t.true(accepted > 10 && accepted < 40, `${accepted} small records before backpressure`)
    ws.end()
    await new Promise((resolve) => ws.on('finish', resolve))
    // Bytes, and records holding bytes, count their length: ten 10 KiB chunks fill 100 KiB.
    for (const make of [(n) => Buffer.alloc(n), (n) => new Uint8Array(n), (n) => ({ key: 'k', value: Buffer.alloc(n) }), (n) => ({ value: new Uint8Array(n) })]) {
      const big = wal.writable(0, { highWaterMark: 100 * 1024 })
      let n = 0
      while (big.write(make(10 * 1024))) n++
      t.is(n, 9, `${n} chunks of 10 KiB before backpressure`)
      big.end()
      await new Promise((resolve) => big.on('finish', resolve))
    }
    // A record's own `length` field (any extra field is allowed) does not size it.
    const odd = wal.writable(0, { highWaterMark: 100 * 1024 })
    let m = 0
    while (odd.write({ value: Buffer.alloc(10 * 1024), length: m === 0 ? 0.1 : NaN })) m++
    t.is(m, 9)
    odd.end()
    await new Promise((resolve) => odd.on('finish', resolve))
    await wal.close()
  })
})

test('an append error destroys the stream and reaches pipeline', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t), { maxRecordBytes: 100 })
  const err = await t.throwsAsync(promisify(corePipeline)(CoreReadable.from(['ok', 'x'.repeat(500), 'never']), wal.writable(0)))
  t.is(err.code, 'RECORD_TOO_LARGE')
  t.true(wal.offsets(0).end <= 1)
  await wal.close()
})

test('a failed sync reaches pipeline as SYNC_FAILED', async (t) => {
  const io = faultyIO()
  const wal = await WriteAhead.open(tmpDir(t), { io })
  await wal.append(0, 'warm')
  io.arm('datasync', 'EIO', 1, notMeta(io))
  const err = await t.throwsAsync(promisify(corePipeline)(CoreReadable.from(values(10)), wal.writable(0)))
  t.is(err.code, 'SYNC_FAILED')
  await wal.close()
})
