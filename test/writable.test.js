import test from 'ava'
import { pipeline as corePipeline, Readable as CoreReadable } from 'node:stream'
import { promisify } from 'node:util'
import fs from 'node:fs'
import { Readable as StreamxReadable, pipeline as streamxPipeline } from 'streamx'
import { WriteAhead } from '../dist/src/index.js'
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
  t.deepEqual(wal.offsets(0), { start: 0, end: 5000 }, 'every record was durable when the callback fired')
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

test('more queued than one batch may hold is split by size, in order, still one commit', async (t) => {
  const io = faultyIO()
  const maxBatchBytes = 4096
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir, { io, maxBatchBytes })
  await wal.append(0, 'warm')
  io.log.length = 0
  const ws = wal.writable(0, { highWaterMark: 1024 * 1024 })
  const big = Array.from({ length: 2000 }, (_, i) => `${i}:${'v'.repeat(90)}`)
  for (const v of big) ws.write(v)
  ws.end()
  await new Promise((resolve) => ws.on('finish', resolve))
  t.deepEqual((await contents(wal, 0)).slice(1), big, 'every record, in order')
  t.true(io.log.length <= 3, `${io.log.length} syncs for ~200 KB queued under maxBatchBytes ${maxBatchBytes}`)
  await wal.close()
  // Walk the segment's batches by their length fields (the first 4 bytes of each, after the
  // 64-byte segment header): none may exceed maxBatchBytes.
  const seg = fs.readFileSync(partitionPath(dir, 0, segmentFiles(dir)[0]))
  const lengths = []
  for (let pos = 64; pos + 4 <= seg.length && seg.readUInt32BE(pos) > 0; pos += seg.readUInt32BE(pos)) lengths.push(seg.readUInt32BE(pos))
  t.true(lengths.length >= 200_000 / maxBatchBytes, `${lengths.length} batches`)
  t.true(lengths.every((n) => n <= maxBatchBytes), `largest batch ${Math.max(...lengths)} bytes`)
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
