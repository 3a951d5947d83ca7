import test from 'ava'
import { WriteAhead, WalError } from '../dist/src/index.js'
import { tmpDir, collect, small, segmentFiles } from './helpers/tmp.js'

test('append resolves to dense offsets from 0, per partition', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t), { partitions: 3 })
  t.is(wal.partitions, 3)
  t.is(await wal.append(0, 'a'), 0)
  t.is(await wal.append(0, 'b'), 1)
  t.is(await wal.append(2, 'c'), 0)
  t.deepEqual(wal.offsets(0), { start: 0, end: 2, pending: 2 })
  t.deepEqual(wal.offsets(1), { start: 0, end: 0, pending: 0 })
  await wal.close()
})

test('offsets().pending: the offset the next append gets, ahead of end while appends are in flight', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  await wal.append(0, 'a')
  t.deepEqual(wal.offsets(0), { start: 0, end: 1, pending: 1 })
  // Offsets are assigned in the call: the batch is numbered before it is durable.
  const first = wal.appendBatch(0, ['b', 'c', 'd'])
  const inFlight = wal.offsets(0)
  t.is(inFlight.end, 1, 'not durable yet: end has not moved')
  t.is(inFlight.pending, 4, 'pending counts the queued records')
  // An append made in the same step starts at pending: what a writer sharing the log relies on.
  const next = wal.append(0, 'e')
  t.is(await first, 1)
  t.is(await next, 4)
  t.deepEqual(wal.offsets(0), { start: 0, end: 5, pending: 5 })
  await wal.close()
})

test('records keep key, value, timestamp and ordered duplicate headers', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  await wal.append(0, { key: 'k', value: Buffer.from([0, 1, 2]), timestamp: 1234, headers: [['h', 'one'], ['h', 'two'], ['n', null]] })
  await wal.append(0, { value: 'v', headers: { a: ['1', '2'], b: Buffer.from('3') }, timestamp: '99' })
  await wal.append(0, new Uint8Array([7, 8]))
  const r0 = await wal.read(0, 0)
  t.is(r0.partition, 0)
  t.is(r0.offset, 0)
  t.is(r0.timestamp, 1234)
  t.deepEqual(r0.key, Buffer.from('k'))
  t.deepEqual(r0.value, Buffer.from([0, 1, 2]))
  t.deepEqual(r0.headers, [{ key: 'h', value: Buffer.from('one') }, { key: 'h', value: Buffer.from('two') }, { key: 'n', value: null }])
  const r1 = await wal.read(0, 1)
  t.is(r1.key, null)
  t.is(r1.timestamp, 99)
  t.deepEqual(r1.headers.map((h) => [h.key, h.value.toString()]), [['a', '1'], ['a', '2'], ['b', '3']])
  t.deepEqual((await wal.read(0, 2)).value, Buffer.from([7, 8]))
  await wal.close()
})

test('concurrent appends share commits and keep order of issue', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t), { partitions: 2 })
  const promises = []
  for (let i = 0; i < 2000; i++) promises.push(wal.append(i % 2, `r${i}`))
  const offsets = await Promise.all(promises)
  for (let i = 0; i < 2000; i++) t.is(offsets[i], Math.floor(i / 2))
  const recs = await collect(wal.iterate(1))
  t.is(recs.length, 1000)
  t.deepEqual(recs.map((r) => r.value.toString()), Array.from({ length: 1000 }, (_, i) => `r${i * 2 + 1}`))
  await wal.close()
})

test('appendBatch is contiguous and returns the first offset', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  await wal.append(0, 'x')
  t.is(await wal.appendBatch(0, ['a', 'b', 'c']), 1)
  t.is(await wal.appendBatch(0, []), 4)
  const recs = await collect(wal.iterate(0, { from: 1, to: 3 }))
  t.deepEqual(recs.map((r) => [r.offset, r.value.toString()]), [[1, 'a'], [2, 'b']])
  await wal.close()
})

test('rotation across many small segments keeps every record readable', async (t) => {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir, small)
  const values = []
  for (let b = 0; b < 40; b++) {
    const batch = Array.from({ length: 25 }, (_, i) => `b${b}-${i}-${'x'.repeat(b * 7 % 100)}`)
    values.push(...batch)
    await wal.appendBatch(0, batch)
  }
  const recs = await collect(wal.iterate(0))
  t.deepEqual(recs.map((r) => r.value.toString()), values)
  for (const i of [0, 1, 499, 500, 999]) t.is((await wal.read(0, i)).value.toString(), values[i])
  await wal.close()
})

test('iterateBatches yields arrays of records in order', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t), small)
  for (let i = 0; i < 10; i++) await wal.appendBatch(0, Array.from({ length: 100 }, (_, j) => `${i * 100 + j}`))
  let next = 0
  for await (const chunk of wal.iterateBatches(0, { from: 5 })) {
    t.true(chunk.length > 0)
    for (const r of chunk) t.is(r.offset, 5 + next++)
  }
  t.is(next, 995)
  await wal.close()
})

test('a commit larger than a segment spans segments and stays atomic per appendBatch', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t), { segmentBytes: 8192, maxBatchBytes: 4000, preallocate: false })
  const promises = []
  for (let i = 0; i < 60; i++) promises.push(wal.appendBatch(0, Array.from({ length: 10 }, (_, j) => `${i}:${j}:${'y'.repeat(20)}`)))
  const firsts = await Promise.all(promises)
  t.deepEqual(firsts, Array.from({ length: 60 }, (_, i) => i * 10))
  const recs = await collect(wal.iterate(0))
  t.is(recs.length, 600)
  t.is(recs[599].value.toString().split(':')[0], '59')
  await wal.close()
})

test('explicit offsets leave gaps that reads skip', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  t.is(await wal.appendBatch(0, ['a', 'b', 'c'], { offsets: [3, 7, 8] }), 3)
  t.deepEqual(wal.offsets(0), { start: 3, end: 9, pending: 9 }, 'the first retained offset is the first one written')
  const recs = await collect(wal.iterate(0))
  t.deepEqual(recs.map((r) => r.offset), [3, 7, 8])
  t.is((await wal.read(0, 7)).value.toString(), 'b')
  await t.throwsAsync(wal.read(0, 5), { instanceOf: WalError, code: 'OFFSET_OUT_OF_RANGE' })
  await t.throwsAsync(wal.appendBatch(0, ['d'], { offsets: [8] }), { code: 'INVALID_OFFSET' })
  t.is(await wal.append(0, 'e'), 9)
  await wal.close()
})

test('a checkpoint is durable with its records and survives rotation and reopen', async (t) => {
  const dir = tmpDir(t)
  let wal = await WriteAhead.open(dir, small)
  for (let i = 0; i < 50; i++) await wal.appendBatch(0, Array.from({ length: 10 }, () => 'z'.repeat(100)), { checkpoint: { name: 'src', value: String(i) } })
  await wal.appendBatch(0, ['last'], { checkpoint: { name: 'other', value: 'o' } })
  t.is(wal.checkpoint(0, 'src').toString(), '49')
  await wal.close()
  wal = await WriteAhead.open(dir, small)
  t.is(wal.checkpoint(0, 'src').toString(), '49')
  t.is(wal.checkpoint(0, 'other').toString(), 'o')
  t.is(wal.checkpoint(0, 'missing'), null)
  await wal.close()
})

test('sync modes interval and never acknowledge and read back', async (t) => {
  for (const sync of ['interval', 'never']) {
    const dir = tmpDir(t, sync)
    let wal = await WriteAhead.open(dir, { sync, syncIntervalMs: 5 })
    await Promise.all(Array.from({ length: 100 }, (_, i) => wal.append(0, String(i))))
    await wal.close()
    wal = await WriteAhead.open(dir)
    t.deepEqual(wal.offsets(0), { start: 0, end: 100, pending: 100 }, sync)
    await wal.close()
  }
})

test('a checkpoint written early in a commit that spans segments survives reopen (it is carried into the new segment)', async (t) => {
  const dir = tmpDir(t)
  let wal = await WriteAhead.open(dir, { segmentBytes: 8192, maxBatchBytes: 4000, preallocate: false })
  await wal.append(0, 'first')
  // One tick: a small batch with the checkpoint, then enough batches to fill the segment and more.
  const withCheckpoint = wal.appendBatch(0, ['cp'], { checkpoint: { name: 'source', value: '17' } })
  const rest = Array.from({ length: 8 }, () => wal.appendBatch(0, Array.from({ length: 10 }, () => 'x'.repeat(300))))
  await Promise.all([withCheckpoint, ...rest])
  t.true(segmentFiles(dir).length >= 2)
  await wal.close()
  wal = await WriteAhead.open(dir)
  t.is(wal.checkpoint(0, 'source')?.toString(), '17')
  await wal.close()
})

test('maxBatchBytes counts the checkpoint: a batch is never written larger than the limit', async (t) => {
  const dir = tmpDir(t)
  let wal = await WriteAhead.open(dir, { segmentBytes: 16384 })
  const max = wal.options.maxBatchBytes
  const big = Buffer.alloc(wal.options.maxRecordBytes - 16, 7)
  const checkpoint = { name: 'mirror', value: 'c'.repeat(200) }
  await t.throwsAsync(wal.appendBatch(0, [big], { checkpoint }), { code: 'BATCH_TOO_LARGE' })
  t.is(await wal.appendBatch(0, [big]), 0, 'without the checkpoint it fits')
  // Merged into one batch with earlier appends of the same commit, the checkpoint counts too.
  const small1 = Buffer.alloc(Math.floor(max / 2), 1)
  const results = await Promise.allSettled([wal.append(0, small1), wal.appendBatch(0, [Buffer.alloc(max - small1.length - 300, 2)], { checkpoint })])
  t.is(results[0].status, 'fulfilled')
  await wal.close()
  wal = await WriteAhead.open(dir, { segmentBytes: 16384 })
  const acknowledged = results.filter((r) => r.status === 'fulfilled').length
  t.is(wal.offsets(0).end, 1 + acknowledged, 'everything acknowledged is there after reopen')
  await wal.close()
})

test('reopening with a smaller maxBatchBytes reads batches written under a larger one', async (t) => {
  const dir = tmpDir(t)
  let wal = await WriteAhead.open(dir, { maxBatchBytes: 256 * 1024 })
  const values = Array.from({ length: 1000 }, (_, i) => `record ${i} `.padEnd(100, '.'))
  await wal.appendBatch(0, values, { checkpoint: { name: 'c', value: 'v' } })
  await wal.close()
  wal = await WriteAhead.open(dir, { maxBatchBytes: 4096 })
  t.is(wal.offsets(0).end, 1000)
  t.is((await wal.read(0, 777)).value.toString(), values[777])
  t.deepEqual((await collect(wal.iterate(0))).map((r) => r.value.toString()), values)
  t.is(wal.checkpoint(0, 'c').toString(), 'v')
  await wal.close()
  const report = await WriteAhead.verify(dir)
  t.true(report.ok)
})

test('explicit offsets far apart: one appendBatch spans less than 2^32, separate ones start new batches', async (t) => {
  const dir = tmpDir(t)
  let wal = await WriteAhead.open(dir)
  const max = 2 ** 32 - 1
  await t.throwsAsync(wal.appendBatch(0, ['a', 'b'], { offsets: [0, max + 1] }), { code: 'INVALID_OFFSET' })
  t.is(await wal.appendBatch(0, ['a', 'b'], { offsets: [0, max] }), 0, 'a span of exactly 2^32 - 1 fits')
  // Issued together they would share one batch: the far one must open its own.
  const far = [wal.appendBatch(0, ['c'], { offsets: [max + 1] }), wal.appendBatch(0, ['d'], { offsets: [3 * max] })]
  t.deepEqual(await Promise.all(far), [max + 1, 3 * max])
  await wal.close()
  wal = await WriteAhead.open(dir)
  t.deepEqual((await collect(wal.iterate(0))).map((r) => [r.offset, r.value.toString()]), [[0, 'a'], [max, 'b'], [max + 1, 'c'], [3 * max, 'd']])
  t.is((await wal.read(0, 3 * max)).value.toString(), 'd')
  t.is(wal.offsets(0).end, 3 * max + 1)
  await wal.close()
})
