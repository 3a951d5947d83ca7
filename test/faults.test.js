import test from 'ava'
import fs from 'node:fs'
import { WriteAhead, WalError } from '../dist/src/index.js'
import { tmpDir, collect } from './helpers/tmp.js'
import { faultyIO, notMeta } from './helpers/faulty-io.js'
import { SimDisk, fsError } from './helpers/sim-disk.js'

test('a failed fdatasync rejects the commit and fences the partition until reopened', async (t) => {
  const dir = tmpDir(t)
  const io = faultyIO()
  let wal = await WriteAhead.open(dir, { io, partitions: 2 })
  await wal.appendBatch(0, ['a', 'b'])
  io.arm('datasync', 'EIO', 1, notMeta(io))
  const err = await t.throwsAsync(wal.append(0, 'c'), { instanceOf: WalError, code: 'SYNC_FAILED' })
  t.is(err.details.partition, 0)
  await t.throwsAsync(wal.append(0, 'd'), { code: 'PARTITION_FAILED' })
  t.is(await wal.append(1, 'other partition'), 0, 'other partitions keep working')
  t.is((await wal.read(0, 1)).value.toString(), 'b', 'acknowledged data stays readable')
  await wal.close()
  wal = await WriteAhead.open(dir, { io })
  const values = (await collect(wal.iterate(0))).map((r) => r.value.toString())
  t.deepEqual(values.slice(0, 2), ['a', 'b'])
  t.is(await wal.append(0, 'e'), wal.offsets(0).end - 1)
  await wal.close()
})

test('a failed sync during rotation fences the partition; reopening keeps everything acknowledged', async (t) => {
  const dir = tmpDir(t)
  const io = faultyIO()
  let wal = await WriteAhead.open(dir, { io, segmentBytes: 8192, preallocate: false })
  let acked = 0
  for (; acked < 40; acked++) await wal.append(0, 'x'.repeat(100))
  io.arm('datasync', 'EIO', 1)
  const results = await Promise.allSettled(Array.from({ length: 200 }, () => wal.append(0, 'y'.repeat(100))))
  const rejected = results.filter((r) => r.status === 'rejected')
  t.true(rejected.length > 0)
  t.true(rejected.every((r) => ['SYNC_FAILED', 'PARTITION_FAILED'].includes(r.reason.code)))
  const ok = results.filter((r) => r.status === 'fulfilled').length
  await wal.close()
  wal = await WriteAhead.open(dir, { io })
  t.true(wal.offsets(0).end >= acked + ok)
  const recs = await collect(wal.iterate(0))
  t.true(recs.slice(0, acked).every((r) => r.value.toString() === 'x'.repeat(100)))
  await wal.close()
})

test('ENOSPC rejects the append with DISK_FULL; writes succeed again once space is back', async (t) => {
  const dir = tmpDir(t)
  const io = faultyIO()
  const wal = await WriteAhead.open(dir, { io, preallocate: false })
  t.is(await wal.append(0, 'kept'), 0)
  io.arm('write', 'ENOSPC', 1)
  await t.throwsAsync(wal.append(0, 'lost'), { instanceOf: WalError, code: 'DISK_FULL' })
  t.deepEqual(wal.offsets(0), { start: 0, end: 1, pending: 1 })
  t.is(await wal.append(0, 'next'), 1, 'the rejected offset is assigned again, offsets stay dense')
  t.deepEqual((await collect(wal.iterate(0))).map((r) => r.value.toString()), ['kept', 'next'])
  await wal.close()
})

test('ENOSPC while creating the next segment loses nothing and recovers', async (t) => {
  const dir = tmpDir(t)
  const io = faultyIO()
  const wal = await WriteAhead.open(dir, { io, segmentBytes: 8192, preallocate: false })
  await wal.append(0, 'z'.repeat(200))
  io.arm('open', 'ENOSPC', 1, ({ mode }) => mode === 'wx')
  // Append until the segment is full and rotation has to create a file.
  let failure = null
  for (let i = 0; i < 100 && failure === null; i++) {
    try { await wal.append(0, 'z'.repeat(200)) } catch (err) { failure = err }
  }
  t.is(failure?.code, 'DISK_FULL')
  const end = await wal.append(0, 'after')
  t.is(end, wal.offsets(0).end - 1)
  const recs = await collect(wal.iterate(0))
  t.is(recs.length, wal.offsets(0).end)
  t.is(recs.at(-1).value.toString(), 'after')
  await wal.close()
})

test('any error starting the next segment (EMFILE, EACCES, EIO on the new file) undoes the commit without fencing the partition', async (t) => {
  for (const [op, code] of [['open', 'EMFILE'], ['open', 'EACCES'], ['datasync', 'EIO']]) {
    const dir = tmpDir(t, `${op}-${code}`)
    const io = faultyIO()
    const wal = await WriteAhead.open(dir, { io, segmentBytes: 8192, preallocate: false })
    await wal.append(0, 'z'.repeat(200))
    // Only the new segment's file: its open ('wx'), or its sync.
    const open = io.open
    let created = -1
    io.open = (file, mode) => { const fd = open(file, mode); if (mode === 'wx') created = fd; return fd }
    io.arm(op, code, 1, op === 'open' ? ({ mode }) => mode === 'wx' : ({ fd }) => fd === created)
    let failure = null
    const acked = []
    for (let i = 0; i < 100 && failure === null; i++) {
      try { acked.push(await wal.append(0, `r${i}`.padEnd(200, '.'))) } catch (err) { failure = err }
    }
    t.is(failure?.code, 'IO_ERROR', `${code}: ${failure?.message}`)
    t.regex(failure.message, /the next segment could not be started, and the commit was undone/)
    // Not fenced: the next append starts the segment, at the offset the undone one had.
    t.is(await wal.append(0, 'after'), acked.length + 1, code)
    await wal.close()
    const again = await WriteAhead.open(dir)
    const recs = await collect(again.iterate(0))
    t.deepEqual(recs.map((r) => r.value.toString()), ['z'.repeat(200), ...acked.map((_, i) => `r${i}`.padEnd(200, '.')), 'after'], code)
    await again.close()
  }
})

test('appends to different partitions sync in parallel, and readers never see a record before its sync returns', async (t) => {
  const dir = tmpDir(t)
  const io = faultyIO()
  const wal = await WriteAhead.open(dir, { io, partitions: 2, preallocate: false })
  // The first commit of a partition creates its segment (synced inline); start after that.
  await Promise.all([wal.append(0, 'first'), wal.append(1, 'first')])
  io.holdSyncs()
  io.log.length = 0
  let done = 0
  const a = wal.append(0, 'a').then((o) => { done++; return o })
  const b = wal.append(1, 'b').then((o) => { done++; return o })
  await io.whenHeld(2)
  t.is(io.heldSyncs, 2, 'both partitions have a sync in flight at once')
  t.deepEqual(io.log.map(([op]) => op), ['datasyncAsync', 'datasyncAsync'])
  t.is(done, 0)
  t.deepEqual(wal.offsets(0), { start: 0, end: 1, pending: 2 }, 'the second record is numbered, not yet visible')
  await t.throwsAsync(wal.read(0, 1), { code: 'OFFSET_OUT_OF_RANGE' })
  t.deepEqual((await collect(wal.iterate(1))).map((r) => r.offset), [0])
  io.releaseSyncs()
  t.deepEqual(await Promise.all([a, b]), [1, 1])
  t.is((await wal.read(1, 1)).value.toString(), 'b')
  await wal.close()
})

test('a single partition commits with one inline sync per group of concurrent appends', async (t) => {
  const io = faultyIO()
  const wal = await WriteAhead.open(tmpDir(t), { io })
  io.log.length = 0
  await Promise.all(Array.from({ length: 500 }, (_, i) => wal.append(0, String(i))))
  t.deepEqual(io.log, [['datasync', io.log[0][1]]], 'one fdatasync for 500 concurrent appends')
  await wal.close()
})

test('index files that are missing or damaged are rebuilt', async (t) => {
  const fs = await import('node:fs')
  const dir = tmpDir(t)
  let wal = await WriteAhead.open(dir, { segmentBytes: 16 * 1024, preallocate: false })
  for (let i = 0; i < 60; i++) await wal.appendBatch(0, Array.from({ length: 10 }, (_, j) => `${i * 10 + j}`.padEnd(80, '.')))
  await wal.close()
  const pdir = `${dir}/partition-0`
  const indexes = fs.readdirSync(pdir).filter((f) => f.endsWith('.index'))
  t.true(indexes.length >= 2)
  fs.rmSync(`${pdir}/${indexes[0]}`)
  const damaged = fs.readFileSync(`${pdir}/${indexes[1]}`)
  damaged[damaged.length - 1] ^= 0xff
  fs.writeFileSync(`${pdir}/${indexes[1]}`, damaged)
  wal = await WriteAhead.open(dir)
  for (const off of [5, 250, 333, 599]) t.is((await wal.read(0, off)).value.toString().split('.')[0], String(off))
  await wal.close()
  t.true(fs.existsSync(`${pdir}/${indexes[0]}`), 'the missing index was written again')
  t.notDeepEqual(fs.readFileSync(`${pdir}/${indexes[1]}`), damaged)
})

test('commits and rotations are published on diagnostics channels', async (t) => {
  const { commitChannel, rotateChannel } = await import('../dist/src/index.js')
  const dir = tmpDir(t)
  const commits = []
  const rotations = []
  const onCommit = (m) => { if (m.dir === dir) commits.push(m) }
  const onRotate = (m) => { if (m.dir === dir) rotations.push(m) }
  commitChannel.subscribe(onCommit)
  rotateChannel.subscribe(onRotate)
  t.teardown(() => { commitChannel.unsubscribe(onCommit); rotateChannel.unsubscribe(onRotate) })
  const wal = await WriteAhead.open(dir, { segmentBytes: 8192, preallocate: false })
  for (let i = 0; i < 30; i++) await wal.appendBatch(0, Array.from({ length: 5 }, () => 'c'.repeat(100)))
  await wal.close()
  const data = commits.filter((m) => m.partition === 0)
  t.is(data.length, 30)
  t.true(data.every((m) => m.synced && m.batches === 1 && m.bytes > 500))
  t.true(rotations.filter((m) => m.partition === 0).length >= 2)
})

test('background preparation of the next segment is published; a failed one only costs speed', async (t) => {
  const { prepareChannel, rotateChannel } = await import('../dist/src/index.js')
  const dir = tmpDir(t)
  const io = faultyIO()
  const events = []
  const waiting = []
  const onPrepare = (m) => { if (m.dir === dir && m.partition === 0) { events.push(m); waiting.splice(0).forEach((f) => f()) } }
  const rotations = []
  const onRotate = (m) => { if (m.dir === dir && m.partition === 0) rotations.push(m) }
  const nextPrepare = (n) => new Promise((resolve) => { const check = () => events.length >= n ? resolve(events[n - 1]) : waiting.push(check); check() })
  prepareChannel.subscribe(onPrepare)
  rotateChannel.subscribe(onRotate)
  t.teardown(() => { prepareChannel.unsubscribe(onPrepare); rotateChannel.unsubscribe(onRotate) })

  // Partition 0's zero-fill, not the meta log's (which prepares its next segment too).
  io.arm('writeAsync', 'ENOSPC', 1, ({ fd }) => io.pathOf(fd)?.includes('/partition-0/') === true)
  const wal = await WriteAhead.open(dir, { io, segmentBytes: 16384 })
  await wal.append(0, 'first')
  const failed = await nextPrepare(1)
  t.like(failed, { partition: 0, bytes: 16384, ok: false })
  t.deepEqual(fs.readdirSync(`${dir}/partition-0`).filter((n) => n.endsWith('.tmp')), [], 'the failed file is removed')

  const before = rotations.length
  let n = 1
  while (rotations.length === before) { await wal.append(0, 'x'.repeat(200)); n++ }
  t.false(rotations[before].prepared, 'the rotation after a failed preparation creates a plain file')
  const ok = await nextPrepare(2)
  t.like(ok, { partition: 0, bytes: 16384, ok: true })
  t.true(ok.ms >= 0)
  await wal.append(0, 'y')
  t.true(rotations.at(-1).prepared, 'the next rotation takes the prepared file')
  t.deepEqual((await collect(wal.iterate(0))).map((r) => r.value.toString()), ['first', ...Array(n - 1).fill('x'.repeat(200)), 'y'])
  await wal.close()
})

test('a segment that a commit leaves behind is sealed only after that commit is published', async (t) => {
  // The commit spans a rotation and ends with a piece written normally into the new segment, so
  // it is acknowledged only after an fdatasync on the thread pool (two partitions commit at once).
  // The old segment's seal must include the commit's first piece, not land on top of it.
  const dir = tmpDir(t)
  const io = faultyIO()
  const o = { io, partitions: 2, segmentBytes: 4096, maxBatchBytes: 2048, maxRecordBytes: 1984, preallocate: false }
  let wal = await WriteAhead.open(dir, o)
  const values = ['a'.repeat(1500), 'b'.repeat(1400)]
  for (const v of values) await wal.appendBatch(0, [v])
  const more = ['c'.repeat(100), 'd'.repeat(1960), 'e'.repeat(1855)]
  io.holdSyncs()
  const acked = Promise.all([...more.map((v) => wal.appendBatch(0, [v])), wal.appendBatch(1, ['x'])])
  await io.whenHeld(1) // the commit is written and waits for its fdatasync
  // The bug this guards against sealed the old segment in an immediate queued during that commit.
  // Immediates run in the order queued, so one queued now runs after it: release only then.
  await new Promise((resolve) => setImmediate(resolve))
  io.releaseSyncs()
  await acked
  values.push(...more)
  const read = async (w) => (await collect(w.iterate(0))).map((r) => r.value.toString())
  t.deepEqual(await read(wal), values)
  await wal.close()
  wal = await WriteAhead.open(dir, o)
  t.deepEqual(await read(wal), values, 'every acknowledged record is there after reopen')
  await wal.close()
})

test('a segment cut short under a running log is CORRUPTED on read, never a hang', async (t) => {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir, { segmentBytes: 8192, preallocate: false })
  for (let i = 0; i < 40; i++) await wal.append(0, `${i}.`.padEnd(300, 'x'))
  const first = fs.readdirSync(`${dir}/partition-0`).filter((n) => n.endsWith('.log')).sort()[0]
  fs.truncateSync(`${dir}/partition-0/${first}`, 2000)
  await t.throwsAsync(collect(wal.iterate(0)), { code: 'CORRUPTED' })
  await t.throwsAsync(wal.read(0, 20), { code: 'CORRUPTED' })
  await wal.close()
})

test('a checkpoint-only first commit does not fence the partition once the prepared segment is ready', async (t) => {
  const { prepareChannel } = await import('../dist/src/index.js')
  const dir = tmpDir(t)
  let onReady
  const ready = new Promise((resolve) => { onReady = (m) => { if (m.dir === dir && m.partition === 0 && m.ok) resolve() } })
  prepareChannel.subscribe(onReady)
  t.teardown(() => prepareChannel.unsubscribe(onReady))
  let wal = await WriteAhead.open(dir, { segmentBytes: 64 * 1024 })
  await wal.appendBatch(0, [], { checkpoint: { name: 'mirror', value: '1' } })
  await ready
  // The open segment (base 0) has no records: moving to the prepared file would need base 0 again.
  t.is(await wal.append(0, 'x'), 0)
  t.is(await wal.append(0, 'y'), 1)
  await wal.close()
  wal = await WriteAhead.open(dir, { segmentBytes: 64 * 1024 })
  t.deepEqual((await collect(wal.iterate(0))).map((r) => r.value.toString()), ['x', 'y'])
  t.is(wal.checkpoint(0, 'mirror').toString(), '1')
  await wal.close()
})

test('an I/O layer whose background write throws instead of calling back fails the preparation; close still ends', async (t) => {
  const { prepareChannel, nodeFileIO } = await import('../dist/src/index.js')
  const dir = tmpDir(t)
  const failed = []
  const on = (m) => { if (m.dir === dir && m.partition === 0) failed.push(m.ok) }
  prepareChannel.subscribe(on)
  t.teardown(() => prepareChannel.unsubscribe(on))
  const io = { ...nodeFileIO, writeAsync () { throw Object.assign(new Error('EIO: injected fault, writeAsync'), { code: 'EIO' }) } }
  const wal = await WriteAhead.open(dir, { io, segmentBytes: 16384 })
  t.is(await wal.append(0, 'kept'), 0)
  t.deepEqual(failed, [false], 'the failed preparation is published')
  await wal.close()
  t.deepEqual(fs.readdirSync(`${dir}/partition-0`).filter((n) => n.endsWith('.tmp')), [], 'and its file removed')
})

test('a trim whose unlink of an index file fails still drops the segment whose log file it deleted: start stays readable', async (t) => {
  const dir = tmpDir(t)
  const io = faultyIO()
  const opts = { io, segmentBytes: 8192, preallocate: false }
  let wal = await WriteAhead.open(dir, opts)
  for (let i = 0; wal.segments(0).length < 6; i++) await wal.appendBatch(0, Array.from({ length: 10 }, (_, j) => `r${i * 10 + j}-${'x'.repeat(40)}`))
  const segs = wal.segments(0)
  const index = `${dir}/partition-0/${segs[1].file.replace(/\.log$/, '.index')}`
  t.true(fs.existsSync(index))
  io.arm('unlink', 'EIO', 1, ({ path }) => path === index)
  t.is(await wal.trimBefore(0, segs[3].base), segs[3].base)
  const { start } = wal.offsets(0)
  t.is(start, segs[3].base)
  t.true(fs.existsSync(`${dir}/partition-0/${segs[3].file}`))
  t.is((await wal.read(0, start)).offset, start)
  t.is((await collect(wal.iterate(0)))[0].offset, start)
  await wal.close()
  // The index file left behind is an orphan, which the next open deletes.
  wal = await WriteAhead.open(dir, opts)
  t.is(wal.offsets(0).start, start)
  t.false(fs.existsSync(index))
  await wal.close()
})

test("with sync: 'interval' or 'never', close() rejects with SYNC_FAILED when a sync of acknowledged appends failed, its own or the timer's", async (t) => {
  // Those appends resolved before any sync: a failed one has no caller to reject but close(),
  // whose success would say everything acknowledged is durable.
  for (const sync of ['never', 'interval']) {
    const io = faultyIO()
    const dir = tmpDir(t, sync)
    const wal = await WriteAhead.open(dir, { io, sync, syncIntervalMs: 60_000, preallocate: false })
    await wal.append(0, 'first') // creates the segment, synced
    t.is(await wal.append(0, 'acknowledged, not yet synced'), 1)
    io.arm('datasync', 'EIO', 1, notMeta(io))
    const err = await t.throwsAsync(wal.close(), { instanceOf: WalError, code: 'SYNC_FAILED' }, sync)
    t.is(err.details.partition, 0)
    const again = await WriteAhead.open(dir, { io, sync })
    t.is((await wal.read(0, 0).catch((e) => e)).code, 'CLOSED', 'closed all the same')
    t.is((await again.read(0, 0)).value.toString(), 'first')
    await again.close()
  }
  // The sync timer is unref'd: the test keeps the event loop running while it waits for a tick.
  const alive = setInterval(() => {}, 60_000)
  t.teardown(() => clearInterval(alive))
  const io = faultyIO()
  const wal = await WriteAhead.open(tmpDir(t, 'timer'), { io, sync: 'interval', syncIntervalMs: 1, preallocate: false })
  await wal.append(0, 'first')
  io.holdSyncs()
  await wal.append(0, 'acknowledged, not yet synced')
  io.arm('datasync', 'EIO', 1, notMeta(io))
  await io.whenHeld(1) // the timer's sync
  io.releaseSyncs()
  await t.throwsAsync(wal.append(0, 'refused'), { message: /fdatasync failed/ })
  await t.throwsAsync(wal.close(), { instanceOf: WalError, code: 'SYNC_FAILED' }, 'the timer\'s failure')
})

test("with sync: 'interval', close() waits for the timer's sync in flight before it closes the segment under it, and reports its failure", async (t) => {
  // Nothing was written since the timer's sync began, so close() had nothing of its own to sync:
  // it closed the descriptor that sync still used (a descriptor number the next open may reuse),
  // and resolved before the sync's outcome was known.
  const alive = setInterval(() => {}, 60_000) // the sync timer is unref'd (see above)
  t.teardown(() => clearInterval(alive))
  const io = faultyIO()
  const wal = await WriteAhead.open(tmpDir(t), { io, sync: 'interval', syncIntervalMs: 1, preallocate: false })
  await wal.append(0, 'first')
  io.holdSyncs()
  await wal.append(0, 'acknowledged, not yet synced')
  io.arm('datasync', 'EIO', 1, notMeta(io))
  await io.whenHeld(1) // the timer's sync
  const closing = wal.close()
  io.releaseSyncs()
  await t.throwsAsync(closing, { instanceOf: WalError, code: 'SYNC_FAILED' })

  // An append acknowledged after the timer's sync began is not covered by it: close() syncs again.
  const io2 = faultyIO()
  const wal2 = await WriteAhead.open(tmpDir(t, 'later'), { io: io2, sync: 'interval', syncIntervalMs: 1, preallocate: false })
  await wal2.append(0, 'first')
  io2.holdSyncs()
  await wal2.append(0, 'covered by the timer\'s sync')
  await io2.whenHeld(1)
  await wal2.append(0, 'acknowledged after it began')
  const fd = io2.log.at(-1)[1]
  io2.log.length = 0
  const closed = wal2.close()
  io2.releaseSyncs()
  await closed
  t.deepEqual(io2.log.filter(([, f]) => f === fd).map(([op]) => op), ['datasyncAsync'], 'close() synced what came after the timer\'s sync')
})

test("with sync: 'interval', a timer's sync that returns after later commits leaves them visible to a read-only open", async (t) => {
  const alive = setInterval(() => {}, 60_000) // the sync timer is unref'd
  t.teardown(() => clearInterval(alive))
  const io = faultyIO()
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir, { io, sync: 'interval', syncIntervalMs: 1, preallocate: false })
  await wal.append(0, 'first') // synced by the segment's creation
  io.holdSyncs()
  await wal.append(0, 'a')
  await io.whenHeld(1) // the timer's sync, begun at offset 2
  await wal.append(0, 'b')
  await wal.append(0, 'c')
  await io.releaseOne()
  // It wrote the mark it began at into the synced slot, and left the visible one at the latest commit.
  const follower = await WriteAhead.open(dir, { readOnly: true })
  t.is(follower.offsets(0).end, 4)
  await follower.close()
  io.releaseSyncs()
  await wal.close()
})

test('a commit spanning a rotation that runs out of space is undone whole, the part already synced into the full segment included: DISK_FULL, and nothing of it is served after a reopen', async (t) => {
  // Two appends in one commit, in two batches (each near maxBatchBytes): the first fits in the
  // open segment, is written and synced there, and the second needs a new segment, whose file
  // cannot be created. Both reject with DISK_FULL, "undone": a record of the first served after
  // a reopen would be one its writer was told to retry, so it would be there twice.
  const io = faultyIO()
  const dir = tmpDir(t)
  const opts = { io, segmentBytes: 8192, maxBatchBytes: 2048, preallocate: false }
  let wal = await WriteAhead.open(dir, opts)
  for (let i = 0; i < 4; i++) await wal.append(0, Buffer.alloc(1500, i))
  t.is(wal.segments(0).length, 1)
  io.arm('open', 'ENOSPC', 1, ({ mode }) => mode === 'wx')
  const results = await Promise.allSettled([wal.append(0, Buffer.alloc(1500, 4)), wal.append(0, Buffer.alloc(1500, 5))])
  t.deepEqual(results.map((r) => r.reason?.code), ['DISK_FULL', 'DISK_FULL'])
  t.deepEqual(wal.offsets(0), { start: 0, end: 4, pending: 4 })
  t.is(await wal.append(0, Buffer.alloc(1500, 6)), 4, 'appends succeed again once space is back')
  await wal.close()
  wal = await WriteAhead.open(dir, opts)
  t.deepEqual((await collect(wal.iterate(0))).map((r) => r.value[0]), [0, 1, 2, 3, 6])
  await wal.close()

  // The first piece was synced: only a sync takes it back, or a power loss brings it back.
  const disk = new SimDisk()
  const simOpts = { ...opts, io: disk.io }
  const sim = await WriteAhead.open('/sim/span', simOpts)
  for (let i = 0; i < 4; i++) await sim.append(0, Buffer.alloc(1500, i))
  let armed = true
  disk.onOperation(({ op, mode, path }) => {
    if (armed && op === 'open' && mode === 'wx' && path.includes('/partition-0/')) { armed = false; throw fsError('ENOSPC', 'open', path) }
  })
  const simResults = await Promise.allSettled([sim.append(0, Buffer.alloc(1500, 4)), sim.append(0, Buffer.alloc(1500, 5))])
  t.deepEqual(simResults.map((r) => r.reason?.code), ['DISK_FULL', 'DISK_FULL'])
  disk.cutPowerAfter(0)
  await sim.close().catch(() => {})
  disk.powerLoss({ mode: 'drop' })
  const again = await WriteAhead.open('/sim/span', simOpts)
  t.deepEqual((await collect(again.iterate(0))).map((r) => r.value[0]), [0, 1, 2, 3], 'after a power loss too')
  await again.close()
})

test('close() waits for a commit still syncing when a failed seal fences its partition meanwhile', async (t) => {
  // The seal's failure rejected the appends gathering for the next commit and told close() the
  // partition was drained: close() then closed the descriptor the commit's fdatasync was using (a
  // number the next open may reuse, so the sync could land on another file, or fail with EBADF)
  // and could resolve with that commit unsettled.
  const io = faultyIO()
  const wal = await WriteAhead.open(tmpDir(t), { io, partitions: 2, segmentBytes: 4096, preallocate: false })
  await Promise.all([wal.append(0, 'first'), wal.append(1, 'first')])
  while (wal.segments(0).length < 2) await wal.append(0, 'x'.repeat(300))
  const old = wal.segments(0)[0].file
  // Every async sync (the seal of the segment left behind, then the parallel commit) waits here.
  const held = []
  let arrived = () => {}
  const datasyncAsync = io.datasyncAsync
  io.datasyncAsync = (fd, cb) => { held.push({ fd, cb }); arrived() }
  const heldCount = (n) => new Promise((resolve) => { arrived = () => { if (held.length >= n) resolve() }; arrived() })
  await heldCount(1)
  const seal = held.shift()
  t.true(io.pathOf(seal.fd).includes(`/partition-0/${old}`), 'the seal of the segment left behind') // opened as <name>.tmp
  let settled = false
  const a = wal.append(0, 'syncing while the seal fails').finally(() => { settled = true })
  const b = wal.append(1, 'in parallel')
  await heldCount(2)
  const commitFd = held.find(({ fd }) => io.pathOf(fd).includes('/partition-0/')).fd
  t.not(commitFd, seal.fd)
  let closedUnderSync = false
  const close = io.close
  let failed = false
  io.close = (fd) => {
    if (fd === commitFd && !settled) closedUnderSync = true
    // The meta log closes right after close() has asked partition 0 to drain: now the seal fails,
    // and the commits' syncs run.
    if (!failed && io.pathOf(fd)?.includes('/meta/')) {
      failed = true
      seal.cb(Object.assign(new Error('EIO: injected fault, seal'), { code: 'EIO' }))
      for (const { fd: f, cb } of held.splice(0)) datasyncAsync(f, cb)
    }
    close(fd)
  }
  await wal.close()
  t.true(failed)
  t.false(closedUnderSync, 'the segment was not closed under its commit\'s fdatasync')
  t.true(settled, 'the commit in flight was settled before close() resolved')
  t.is(await a, wal.offsets(0).end - 1)
  t.is(await b, 1)
})

test('a seal that finds the disk full fences nothing: the segment is sealed after the next commit, and appends go on', async (t) => {
  // The segment's data was synced before the next one started; only its seal (68 bytes) could not
  // be written. Fencing the partition for it turned a passing full disk into a reopen, and the
  // appends gathering meanwhile were told DISK_FULL ("retry") only for the retry to fail too.
  const io = faultyIO()
  const dir = tmpDir(t)
  const opts = { io, segmentBytes: 4096, preallocate: false }
  const wal = await WriteAhead.open(dir, opts)
  await wal.append(0, 'first')
  io.arm('write', 'ENOSPC', 1, ({ fd, len }) => len === 68 && notMeta(io)({ fd }))
  let n = 1
  while (wal.segments(0).length < 2) { await wal.append(0, 'x'.repeat(300)); n++ }
  for (let i = 0; i < 3; i++) t.is(await wal.append(0, `after the seal ${i}`), n++)
  await wal.close()
  const ro = await WriteAhead.open(dir, { io, readOnly: true })
  t.true(ro.segments(0)[0].sealed, 'sealed by this writer, not left to the next open')
  t.is(ro.offsets(0).end, n)
  await ro.close()
  t.true((await WriteAhead.verify(dir, { io })).ok)
})
