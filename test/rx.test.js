import test from 'ava'
import { from, lastValueFrom, toArray, take, throwError, concat, of, Subject, switchMap, map, concatMap } from 'rxjs'
import { WriteAhead } from '../dist/src/index.js'
import { fromPartition, toPartition } from 'writeahead/rx'
import { tmpDir } from './helpers/tmp.js'
import { faultyIO } from './helpers/faulty-io.js'

test('toPartition appends in order and emits durable offsets, batching a fast source', async (t) => {
  const io = faultyIO()
  const wal = await WriteAhead.open(tmpDir(t), { io })
  await wal.append(0, 'warm')
  io.log.length = 0
  const offsets = await lastValueFrom(from(Array.from({ length: 1000 }, (_, i) => `x${i}`)).pipe(toPartition(wal, 0), toArray()))
  t.deepEqual(offsets, Array.from({ length: 1000 }, (_, i) => i + 1))
  t.true(io.log.length <= 2, `${io.log.length} syncs for 1000 values`)
  t.is((await wal.read(0, 1000)).value.toString(), 'x999')
  await wal.close()
})

test('fromPartition is cold, completes at the end, and unsubscribe releases the reader', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  await wal.appendBatch(0, ['a', 'b', 'c'])
  const values = await lastValueFrom(fromPartition(wal, 0).pipe(toArray()))
  t.deepEqual(values.map((r) => r.value.toString()), ['a', 'b', 'c'])
  const again = await lastValueFrom(fromPartition(wal, 0, { from: 1 }).pipe(toArray()))
  t.deepEqual(again.map((r) => r.offset), [1, 2])
  // A live group reader: take(2) unsubscribes, which must free the group's lease.
  const two = await lastValueFrom(fromPartition(wal, 0, { live: true, group: 'rx' }).pipe(take(2), toArray()))
  t.deepEqual(two.map((r) => r.offset), [0, 1])
  const rs = wal.readable(0, { live: true, group: 'rx' })
  rs.destroy()
  await wal.close()
})

test('a live fromPartition sees appends made through toPartition', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  const seen = lastValueFrom(fromPartition(wal, 0, { live: true }).pipe(take(5), toArray()))
  const input = new Subject()
  const written = lastValueFrom(input.pipe(toPartition(wal, 0), toArray()))
  for (let i = 0; i < 5; i++) input.next({ key: 'k', value: String(i) })
  input.complete()
  t.deepEqual(await written, [0, 1, 2, 3, 4])
  t.deepEqual((await seen).map((r) => r.value.toString()), ['0', '1', '2', '3', '4'])
  await wal.close()
})

test('errors propagate: source errors after flushing, append errors reach the subscriber', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t), { maxRecordBytes: 10 })
  const emitted = []
  const err = await t.throwsAsync(lastValueFrom(concat(of('ok'), throwError(() => new Error('source broke'))).pipe(toPartition(wal, 0))))
  t.is(err.message, 'source broke')
  t.is(wal.offsets(0).end, 1, 'what came before the error was appended')
  const bad = await t.throwsAsync(lastValueFrom(from(['fine', 'x'.repeat(50)]).pipe(toPartition(wal, 0))))
  t.is(bad.code, 'RECORD_TOO_LARGE')
  t.is(bad.details.index, 1)
  t.regex(bad.message, /\(value 1 of the source\)$/)
  const fromErr = await t.throwsAsync(lastValueFrom(fromPartition(wal, 9)))
  t.is(fromErr.code, 'UNKNOWN_PARTITION')
  t.deepEqual(emitted, [])
  await wal.close()
})

test('toPartition splits what one turn queued over maxBatchBytes into batches that fit', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t), { segmentBytes: 1024 * 1024 })
  const values = Array.from({ length: 5000 }, (_, i) => `${i}:`.padEnd(100, 'x'))
  t.true(values.length * 100 > wal.options.maxBatchBytes)
  const offsets = await lastValueFrom(from(values).pipe(toPartition(wal, 0), toArray()))
  t.deepEqual(offsets, values.map((_, i) => i))
  const recs = []
  for await (const r of wal.iterate(0)) recs.push(r.value.toString())
  t.deepEqual(recs, values)
  await wal.close()
})

test('toPartition: after a batch fails, nothing later is appended, not even from a later turn', async (t) => {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir, { segmentBytes: 256 * 1024 })
  // A 1-byte payload (within maxRecordBytes) whose 33,000 headers encode to more than a 64 KiB batch.
  const unfit = { value: 'x', headers: Array.from({ length: 33_000 }, () => ['', null]) }
  const before = Array.from({ length: 50 }, (_, i) => `${i}:${'a'.repeat(2000)}`)
  const input = new Subject()
  const emitted = []
  const done = new Promise((resolve) => input.pipe(toPartition(wal, 0)).subscribe({ next: (o) => emitted.push(o), error: resolve, complete: () => resolve(null) }))
  for (const v of before) input.next(v)
  input.next(unfit)
  // Arrives once the first turn's batch was handed to the log, before its refusal is known.
  queueMicrotask(() => { input.next('later'); input.complete() })
  const err = await done
  t.is(err?.code, 'BATCH_TOO_LARGE')
  t.deepEqual(emitted, before.map((_, i) => i))
  await wal.close() // waits for any append still in flight
  const again = await WriteAhead.open(dir)
  const recs = []
  for await (const r of again.iterate(0)) recs.push(r.value.toString())
  t.deepEqual(recs, before, 'exactly the records before the one that failed')
  await again.close()
})

test('switchMap resubscribing to a live group reader gets the lease (unsubscribe and subscribe are synchronous)', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  await wal.appendBatch(0, ['a', 'b', 'c'])
  const restarts = new Subject()
  const seen = []
  let failure = null
  const done = new Promise((resolve) => {
    restarts.pipe(switchMap((n) => fromPartition(wal, 0, { group: 'sw', live: true }).pipe(map((r) => `${n}:${r.offset}`)))).subscribe({
      next: (v) => { seen.push(v); if (v === '1:2') restarts.next(2); if (v === '2:2') resolve() },
      error: (err) => { failure = err; resolve() }
    })
  })
  restarts.next(1)
  await done
  // The second subscription met GROUP_BUSY: the first reader's lease was released only once its destroy had run.
  t.is(failure, null)
  t.deepEqual(seen, ['1:0', '1:1', '1:2', '2:0', '2:1', '2:2'])
  restarts.complete()
  await wal.close()
})

test('fromPartition refuses autoCommit (INVALID_OPTION): with no backpressure it would commit records not yet processed', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  await wal.appendBatch(0, Array.from({ length: 1000 }, (_, i) => `r${i}`))
  // concatMap queues what the reader hands on: autoCommit counted all 1,000 as processed after 9.
  let processed = 0
  const slow = fromPartition(wal, 0, { group: 'rx-ac', autoCommit: { intervalMs: 1 } }).pipe(
    concatMap(async (rec) => { await new Promise((resolve) => setImmediate(resolve)); processed++; return rec }),
    take(9)
  )
  const err = await t.throwsAsync(lastValueFrom(slow))
  t.is(err.code, 'INVALID_OPTION')
  t.is(err.details.option, 'autoCommit')
  t.regex(err.message, /commit after processing/)
  t.is(processed, 0)
  t.is(wal.group('rx-ac').committed(0), null, 'nothing committed')
  // Committing after processing, as the README shows: the group holds exactly what was processed.
  const group = wal.group('rx-ac')
  const done = await lastValueFrom(fromPartition(wal, 0, { group: 'rx-ac', live: true }).pipe(
    take(9),
    concatMap(async (rec) => { processed++; await group.commit(0, rec.offset + 1); return rec.offset })
  ))
  t.is(done, 8)
  t.is(group.committed(0), 9)
  await wal.close()
})
