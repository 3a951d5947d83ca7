import test from 'ava'
import fs from 'node:fs'
import { once } from 'node:events'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { WriteAhead, WalError } from '../dist/src/index.js'
import { tmpDir, collect } from './helpers/tmp.js'

setFlagsFromString('--expose-gc')

async function filled (t, n, opts = {}) {
  const wal = await WriteAhead.open(tmpDir(t), opts)
  for (let i = 0; i < n; i += 100) await wal.appendBatch(0, Array.from({ length: Math.min(100, n - i) }, (_, j) => ({ value: `v${i + j}`, timestamp: 1000 + i + j })))
  return wal
}

test('async iteration from earliest, an offset, latest, and a timestamp', async (t) => {
  const wal = await filled(t, 1000)
  t.is((await collect(wal.readable(0))).length, 1000)
  const from = await collect(wal.readable(0, { from: 990 }))
  t.deepEqual(from.map((r) => r.offset), [990, 991, 992, 993, 994, 995, 996, 997, 998, 999])
  t.deepEqual(await collect(wal.readable(0, { from: 'latest' })), [])
  const byTime = await collect(wal.readable(0, { from: { timestamp: 1500 }, to: 503 }))
  t.deepEqual(byTime.map((r) => [r.offset, r.timestamp]), [[500, 1500], [501, 1501], [502, 1502]])
  t.deepEqual(await collect(wal.readable(0, { from: { timestamp: new Date(99999) } })), [])
  await wal.close()
})

test('timestamp lookups across many segments use the time index', async (t) => {
  const wal = await filled(t, 3000, { segmentBytes: 16 * 1024, preallocate: false })
  for (const ts of [1000, 1001, 2234, 3999]) {
    const [first] = await collect(wal.readable(0, { from: { timestamp: ts }, to: ts - 1000 + 1 }))
    t.is(first.offset, ts - 1000)
  }
  await wal.close()
})

test('breaking out of for await releases the reader (and its group lease)', async (t) => {
  const wal = await filled(t, 500)
  for await (const rec of wal.readable(0, { group: 'g', live: true })) {
    if (rec.offset === 10) break
  }
  // The lease is free again: a second live reader of the group is allowed.
  const again = wal.readable(0, { group: 'g', live: true })
  again.destroy()
  await once(again, 'close')
  t.pass()
  await wal.close()
})

test('live readers see records as they become durable, across rotation, woken by appends', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t), { segmentBytes: 16 * 1024, preallocate: false })
  const rs = wal.readable(0, { live: true })
  const seen = []
  const done = new Promise((resolve, reject) => {
    rs.on('data', (r) => { seen.push(r.offset); if (seen.length === 2000) resolve() })
    rs.on('error', reject)
  })
  for (let i = 0; i < 40; i++) await wal.appendBatch(0, Array.from({ length: 50 }, () => 'x'.repeat(60)))
  await done
  t.deepEqual(seen, Array.from({ length: 2000 }, (_, i) => i))
  const ended = once(rs, 'end')
  await wal.close()
  await ended
  t.pass('close ends live readers cleanly')
})

test('a live reader that falls below a trimmed offset gets OFFSET_TRIMMED, or skips ahead with onTrimmed', async (t) => {
  const wal = await filled(t, 3000, { segmentBytes: 16 * 1024, preallocate: false })
  await wal.trimBefore(0, 2000)
  const start = wal.offsets(0).start
  const err = await t.throwsAsync(collect(wal.readable(0, { from: 5 })))
  t.true(err instanceof WalError)
  t.is(err.code, 'OFFSET_TRIMMED')
  const recs = await collect(wal.readable(0, { from: 5, onTrimmed: 'earliest' }))
  t.is(recs[0].offset, start)
  t.is(recs.length, 3000 - start)
  await wal.close()
})

test('onTrimmed: \'earliest\' with a segment deleted behind the log\'s back fails with OFFSET_TRIMMED, never restarting for ever', async (t) => {
  const dir = tmpDir(t)
  let wal = await WriteAhead.open(dir, { segmentBytes: 16 * 1024, preallocate: false })
  for (let i = 0; i < 3000; i += 100) await wal.appendBatch(0, Array.from({ length: 100 }, (_, j) => `v${i + j}`))
  await wal.close()
  wal = await WriteAhead.open(dir, { segmentBytes: 16 * 1024, preallocate: false })
  const [first] = wal.segments(0)
  fs.unlinkSync(`${dir}/partition-0/${first.file}`)
  t.is(wal.offsets(0).start, 0, 'the log does not know')
  // The start it skips to is where the missing segment is: restarting there found it missing again.
  const err = await t.throwsAsync(collect(wal.readable(0, { from: 0, onTrimmed: 'earliest' })))
  t.is(err.code, 'OFFSET_TRIMMED')
  await wal.close()
})

test('options are validated at the boundary', async (t) => {
  const wal = await filled(t, 10)
  t.throws(() => wal.readable(0, { from: 'yesterday' }), { code: 'INVALID_ARGUMENT' })
  t.throws(() => wal.readable(0, { from: -1 }), { code: 'INVALID_OFFSET' })
  t.throws(() => wal.readable(0, { from: 'committed' }), { code: 'INVALID_ARGUMENT' })
  t.throws(() => wal.readable(0, { autoCommit: { intervalMs: 10 } }), { code: 'INVALID_ARGUMENT' })
  t.throws(() => wal.readable(5), { code: 'UNKNOWN_PARTITION' })
  t.throws(() => wal.readable(0, { group: '' }), { code: 'INVALID_ARGUMENT' })
  t.throws(() => wal.readable(0, null), { code: 'INVALID_OPTION' })
  t.throws(() => wal.readable(0, { grup: 'g' }), { code: 'INVALID_OPTION', message: /option grup: unknown option of readable\(\)/ })
  t.throws(() => wal.readable(0, { live: 'yes' }), { code: 'INVALID_OPTION' })
  t.throws(() => wal.readable(0, { highWaterMark: -1 }), { code: 'INVALID_OPTION' })
  t.throws(() => wal.readable(0, { highWaterMark: '1mb' }), { code: 'INVALID_OPTION' })
  await wal.close()
  t.throws(() => wal.readable(0), { code: 'CLOSED' })
})

test('a slow consumer tailing 1M records keeps memory bounded', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  const N = 1_000_000
  const rs = wal.readable(0, { live: true, highWaterMark: 64 * 1024 })
  const producer = (async () => {
    for (let i = 0; i < N; i += 10_000) await wal.appendBatch(0, Array.from({ length: 10_000 }, () => 'p'.repeat(64)))
  })()
  const base = process.memoryUsage().heapUsed
  let peak = base
  let n = 0
  // The consumer tails while the producer writes, and is slower than it.
  for await (const rec of rs) {
    if (rec.offset !== n) throw new Error(`got ${rec.offset}, expected ${n}`)
    n++
    if (n % 1000 === 0) {
      // The slow part: give the event loop a turn every thousand records.
      await new Promise((resolve) => setImmediate(resolve))
      peak = Math.max(peak, process.memoryUsage().heapUsed)
    }
    if (n === N) break
  }
  await producer
  t.is(n, N)
  const growth = peak - base
  t.log(`heap growth while tailing ${N} records: ${(growth / 1048576).toFixed(1)} MiB`)
  t.true(growth < 64 * 1048576, `heap grew by ${(growth / 1048576).toFixed(1)} MiB`)
  await wal.close()
})

test('a paused reader holds decoded only what its buffer holds, not the whole batch it read', async (t) => {
  // One batch of 50k records (about 0.7 MB on disk): a reader that decoded a chunk at once held all
  // of them until the consumer had taken the last, and every young-generation collection copied them.
  const gc = runInNewContext('gc')
  const wal = await WriteAhead.open(tmpDir(t))
  const N = 50_000
  await wal.appendBatch(0, Array.from({ length: N }, (_, i) => ({ value: 'v', headers: [{ key: 'h', value: String(i % 10) }] })))
  gc()
  const base = process.memoryUsage().heapUsed
  const rs = wal.readable(0, { highWaterMark: 16 * 1024 })
  const it = rs[Symbol.asyncIterator]()
  const first = await it.next()
  t.is(first.value.offset, 0)
  gc()
  const held = process.memoryUsage().heapUsed - base
  t.log(`held by a paused reader of a ${N}-record batch: ${(held / 1048576).toFixed(2)} MiB`)
  t.true(held < 4 * 1048576, `a paused reader held ${(held / 1048576).toFixed(1)} MiB`)
  // And it still delivers every record, in order.
  let next = 1
  for (let r = await it.next(); !r.done; r = await it.next()) {
    const rec = r.value
    if (rec.offset !== next || rec.headers[0].value.toString() !== String(next % 10)) throw new Error(`record ${rec.offset} at ${next}`)
    next++
  }
  t.is(next, N)
  await wal.close()
})

test('an iterator left by break lets go of the chunk it read', async (t) => {
  // A reader holds the last chunk it read (up to 1 MiB) for the records after the one it gave;
  // an iterator someone keeps after `break` must not keep that chunk alive with it.
  const gc = runInNewContext('gc')
  const wal = await WriteAhead.open(tmpDir(t))
  await wal.appendBatch(0, Array.from({ length: 5000 }, (_, i) => Buffer.alloc(64, i)))
  const kept = []
  const chunks = []
  const first = async (iterable) => {
    for await (const x of iterable) {
      const rec = Array.isArray(x) ? x[0] : x
      chunks.push(new WeakRef(rec.value.buffer))
      break
    }
  }
  for (const make of [() => wal.iterate(0), () => wal.iterateBatches(0)]) {
    const it = make()
    kept.push(it)
    await first(it)
  }
  await new Promise((resolve) => setImmediate(resolve)) // a WeakRef's target lives to the end of the job that made it
  gc()
  t.deepEqual(chunks.map((c) => c.deref() === undefined), [true, true])
  t.is(kept.length, 2) // still reachable here
  // Reading on from a new iterator is unaffected.
  t.is((await collect(wal.iterate(0, { from: 4990 }))).length, 10)
  await wal.close()
})

test('a live reader whose `to` lies in a gap between explicit offsets ends once the log is past it', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  await wal.appendBatch(0, ['a', 'b', 'c'], { offsets: [0, 10, 20] })
  t.deepEqual((await collect(wal.readable(0, { to: 15, live: true }))).map((r) => r.offset), [0, 10])
  t.deepEqual((await collect(wal.readable(0, { from: 5, to: 8, live: true }))).map((r) => r.offset), [])
  await wal.close()
})

test('close() fails a reader it cuts short with CLOSED instead of ending it as if it had read everything', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t), { segmentBytes: 256 * 1024 })
  for (let i = 0; i < 20; i++) await wal.appendBatch(0, Array.from({ length: 500 }, (_, j) => `r${i * 500 + j}`.padEnd(100, '.')))
  const rs = wal.readable(0, { highWaterMark: 1024 })
  const it = rs[Symbol.asyncIterator]()
  await it.next()
  await wal.close()
  const err = await t.throwsAsync(async () => { for (;;) if ((await it.next()).done) break })
  t.is(err.code, 'CLOSED')
  // So are readers with a `to` the log has reached, live or not, stopped short of it.
  for (const opts of [{ to: 9000 }, { to: 9000, live: true }]) {
    const w = await WriteAhead.open(tmpDir(t), { segmentBytes: 256 * 1024 })
    for (let i = 0; i < 20; i++) await w.appendBatch(0, Array.from({ length: 500 }, (_, j) => `r${i * 500 + j}`.padEnd(100, '.')))
    const short = w.readable(0, { ...opts, highWaterMark: 1024 })[Symbol.asyncIterator]()
    await short.next()
    await w.close()
    const e = await t.throwsAsync(async () => { for (;;) if ((await short.next()).done) break }, undefined, JSON.stringify(opts))
    t.is(e.code, 'CLOSED')
  }
  // A live reader without `to` still ends cleanly.
  const wal2 = await WriteAhead.open(tmpDir(t))
  await wal2.append(0, 'x')
  const live = wal2.readable(0, { live: true })
  const got = collect(live)
  await once(live, 'readable')
  await wal2.close()
  t.is((await got).length, 1)
})

test('an iterator still reading after close() gets CLOSED and reopens no segment file', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t), { segmentBytes: 256 * 1024 })
  for (let i = 0; i < 20; i++) await wal.appendBatch(0, Array.from({ length: 500 }, (_, j) => `r${i * 500 + j}`.padEnd(100, '.')))
  t.true(wal.segments(0).length > 3)
  const it = wal.iterate(0)
  await it.next()
  await wal.close()
  const fds = () => fs.readdirSync('/proc/self/fd').filter((fd) => { try { return fs.readlinkSync(`/proc/self/fd/${fd}`).endsWith('.seg') } catch { return false } }).length
  const before = fds()
  const err = await t.throwsAsync(async () => { for (;;) if ((await it.next()).done) break })
  t.is(err.code, 'CLOSED')
  t.is(fds(), before)
})

test('for await takes records from a full buffer in order, counts them as delivered, and stops at an error', async (t) => {
  // 20,000 records are many buffers' worth: most are taken while the buffer is above its refill
  // mark, straight from it, and the rest through streamx's own iterator.
  const wal = await filled(t, 20_000)
  let next = 0
  for await (const rec of wal.readable(0, { group: 'g', autoCommit: { intervalMs: 60_000 } })) {
    if (rec.offset !== next || rec.value.toString() !== `v${next}`) throw new Error(`record ${rec.offset} at ${next}`)
    next++
    if (rec.offset === 12_345) break
  }
  t.is(wal.group('g').committed(0), 12_345)
  const all = await collect(wal.readable(0, { from: 12_345 }))
  t.deepEqual([all.length, all[0].offset, all.at(-1).offset], [7655, 12_345, 19_999])
  // destroy(err) with the buffer full: the loop ends with that error, and nothing after it is handed out.
  const rs = wal.readable(0)
  const seen = []
  const err = await t.throwsAsync(async () => {
    for await (const rec of rs) {
      seen.push(rec.offset)
      if (rec.offset === 100) rs.destroy(new Error('sink failed'))
    }
  })
  t.is(err.message, 'sink failed')
  t.is(seen.at(-1), 100)
  await wal.close()
})

test('onTrimmed: \'earliest\' moves commit() and autoCommit to the new start at the skip, not back for records buffered before it', async (t) => {
  const wal = await filled(t, 3000, { segmentBytes: 16 * 1024, preallocate: false })
  await wal.trimBefore(0, 2000)
  const start = wal.offsets(0).start
  // 'readable': the reader skips and buffers records, none handed out yet.
  const rs = wal.readable(0, { group: 'g', from: 5, onTrimmed: 'earliest' })
  await once(rs, 'readable')
  await rs.commit()
  t.is(wal.group('g').committed(0), start)
  const auto = wal.readable(0, { group: 'a', from: 5, onTrimmed: 'earliest', autoCommit: { intervalMs: 60_000 } })
  await once(auto, 'readable')
  auto.destroy()
  await once(auto, 'close')
  t.is(wal.group('a').committed(0), start)
  rs.destroy()
  await wal.close()
  // Trimmed while records of the old segment sit in the buffer: taking them must not move the
  // positions back. Segments larger than a read chunk, so the reader runs into the trim mid-segment.
  const big = await WriteAhead.open(tmpDir(t), { segmentBytes: 1024 * 1024, preallocate: false })
  for (let i = 0; i < 3000; i += 100) await big.appendBatch(0, Array.from({ length: 100 }, () => 'x'.repeat(1000)))
  const live = big.readable(0, { group: 's', from: 0, onTrimmed: 'earliest', highWaterMark: 4096 })
  await once(live, 'readable')
  t.is(live.read().offset, 0)
  await big.trimBefore(0, 2990)
  const start2 = big.offsets(0).start
  const seen = []
  let last = -1
  for await (const rec of live) {
    seen.push(rec.offset)
    if (live.delivered < last) t.fail(`delivered went back from ${last} to ${live.delivered} at ${rec.offset}`)
    last = live.delivered
  }
  t.true(seen.some((o) => o > 0 && o < start2), 'records read before the skip are still handed out')
  t.is(seen.at(-1), 2999)
  await big.close()
})
