import test from 'ava'
import { WriteAhead, retentionChannel, rotateChannel } from '../dist/src/index.js'
import { SimDisk, PowerCut, mulberry32 } from './helpers/sim-disk.js'
import { recordFor, sameRecord } from './fixtures/records.js'
import { collect } from './helpers/tmp.js'

const CYCLES = Number(process.env.POWER_CYCLES ?? 500)
const MODES = ['drop', 'tear512', 'tear4k']

/**
 * One log on a simulated disk, through many power losses: each cycle runs a mixed workload
 * (concurrent appends and batches, rotation into prepared segments, trims, retention), cuts the
 * power at a random I/O operation (sometimes in the middle of recovery itself), drops or tears
 * everything unsynced, reopens, and checks against the acknowledged records.
 */
async function runCycles (t, { seed, preallocate, retention, partitions: P, sync = 'always' }) {
  // With sync 'interval' an acknowledgement precedes the sync: a power loss may take acknowledged
  // records. What must hold is the rest: open never fails, nothing torn or foreign is returned,
  // offsets stay contiguous, and no group cursor is left past the end (open moves it back).
  const lossy = sync !== 'always'
  const disk = new SimDisk()
  const dir = '/sim/wal'
  const rng = mulberry32(seed)
  const rand = (n) => Math.floor(rng() * n)
  // A small meta log so group commits compact it (rotation plus snapshot) many times.
  const opts = { io: disk.io, partitions: P, segmentBytes: 8 * 1024, maxBatchBytes: 4096, preallocate, retention, metaSegmentBytes: 4096, sync, syncIntervalMs: 2 }
  const groupAt = Array.from({ length: P }, () => 0)
  const groupInFlight = Array.from({ length: P }, () => null)
  const acked = Array.from({ length: P }, () => new Set())
  const mayBeGone = Array.from({ length: P }, () => 0)
  let checkedRecords = 0
  const onRetention = (msg) => { if (msg.dir === dir) mayBeGone[msg.partition] = Math.max(mayBeGone[msg.partition], msg.start) }
  retentionChannel.subscribe(onRetention)
  t.teardown(() => retentionChannel.unsubscribe(onRetention))
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const where = `seed ${seed} cycle ${cycle}`
    if (rand(10) === 0) disk.cutPowerAfter(1 + rand(40)) // during recovery
    let wal
    try {
      wal = await WriteAhead.open(dir, opts)
    } catch (err) {
      if (!disk.powerCut) throw new Error(`${where}: open failed without a power cut: ${err.stack}`)
    }
    if (wal !== undefined && disk.powerCut) {
      // The cut hit a best-effort write (the boot stamp) that open carried on without: the
      // process would have died there.
      await wal.close().catch(() => {})
      wal = undefined
    }
    if (wal !== undefined) {
      disk.cutPowerAfter(Infinity) // a cut armed for recovery that did not happen is disarmed
      // Check everything acknowledged so far survived, and nothing torn is returned.
      for (let p = 0; p < P; p++) {
        const { start, end } = wal.offsets(p)
        if (!lossy && start > mayBeGone[p] && [...acked[p]].some((o) => o >= mayBeGone[p] && o < start)) throw new Error(`${where}: start ${start} dropped acknowledged records`)
        let expect = start
        for await (const chunk of wal.iterateBatches(p)) {
          for (const rec of chunk) {
            if (rec.offset !== expect) throw new Error(`${where}: partition ${p} offset ${rec.offset}, expected ${expect}`)
            if (!sameRecord(rec, p, rec.offset)) throw new Error(`${where}: partition ${p} offset ${rec.offset} is not the record written there`)
            expect++
            checkedRecords++
          }
        }
        if (expect !== end) throw new Error(`${where}: partition ${p} iterated to ${expect}, end is ${end}`)
        if (!lossy) for (const o of acked[p]) if (o >= Math.max(start, mayBeGone[p]) && o >= end) throw new Error(`${where}: acknowledged offset ${o} of partition ${p} lost (end ${end})`)
        // The cursor is the last acknowledged commit, or one in flight when the power went.
        const c = wal.group('pl').committed(p) ?? 0
        if (c > end || (!lossy && c !== groupAt[p] && c !== groupInFlight[p])) throw new Error(`${where}: group cursor ${c} of partition ${p}, last durable commit ${groupAt[p]}, in flight ${groupInFlight[p]}, end ${end}`)
        groupAt[p] = c
        groupInFlight[p] = null
        // What survived is now the truth: later cycles write after it.
        acked[p] = new Set([...acked[p]].filter((o) => o < end))
      }
      if (!disk.powerCut) disk.cutPowerAfter(1 + rand(preallocate ? 400 : 250))
      const next = Array.from({ length: P }, (_, p) => wal.offsets(p).end)
      const writer = async (p, w) => {
        for (let i = 0; i < 40; i++) {
          const kind = rand(10)
          // One writer per partition moves the group cursor, so the last resolved commit is the truth.
          if (kind === 1 && w === 0) {
            const to = rand(wal.offsets(p).end + 1)
            groupInFlight[p] = to
            await wal.group('pl').commit(p, to)
            groupAt[p] = to
            groupInFlight[p] = null
            continue
          }
          if (kind === 0) {
            const { start: s0, end: e0 } = wal.offsets(p)
            const to = s0 + rand(e0 - s0 + 1)
            const start = await wal.trimBefore(p, to)
            mayBeGone[p] = Math.max(mayBeGone[p], start)
            continue
          }
          const count = kind < 5 ? 1 : 1 + rand(8)
          const first = next[p]
          next[p] += count
          const recs = Array.from({ length: count }, (_, j) => recordFor(p, first + j))
          const got = count === 1 ? await wal.append(p, recs[0]) : await wal.appendBatch(p, recs)
          if (got !== first) throw new Error(`${where}: got offset ${got}, expected ${first}`)
          for (let j = 0; j < count; j++) acked[p].add(first + j)
        }
      }
      const results = await Promise.allSettled(Array.from({ length: P * 2 }, (_, i) => writer(i % P, Math.floor(i / P))))
      for (const r of results) {
        if (r.status === 'rejected' && !disk.powerCut) throw new Error(`${where}: ${r.reason.stack}`)
      }
      await wal.close().catch((err) => { if (!disk.powerCut) throw err })
    }
    disk.powerLoss({ mode: MODES[rand(MODES.length)], rng })
  }
  t.true(checkedRecords > 0)
  return checkedRecords
}

test.serial('power loss with preallocated segments: nothing acknowledged lost, nothing torn returned', async (t) => {
  const n = await runCycles(t, { seed: 1, preallocate: true, partitions: 2 })
  t.log(`${CYCLES} power losses, ${n} records checked`)
})

test.serial('power loss with one partition (inline syncs), growing segments and retention', async (t) => {
  const n = await runCycles(t, { seed: 2, preallocate: false, retention: { maxBytes: 24 * 1024 }, partitions: 1 })
  t.log(`${CYCLES} power losses, ${n} records checked`)
})

test.serial("power loss with sync: 'interval': open never fails, nothing torn or foreign is returned", async (t) => {
  const n = await runCycles(t, { seed: 3, preallocate: true, partitions: 2, sync: 'interval' })
  t.log(`${n} records checked`)
})

test.serial("with sync: 'never', meta compaction keeps the group cursors across a power loss", async (t) => {
  const disk = new SimDisk()
  const dir = '/sim/never'
  const opts = { io: disk.io, sync: 'never', metaSegmentBytes: 4096 }
  let wal = await WriteAhead.open(dir, opts)
  await wal.append(0, 'x')
  await wal.close() // everything durable: the README's promise for 'never' starts from here
  wal = await WriteAhead.open(dir, opts)
  let compactions = 0
  const onRotate = (m) => { if (m.dir === dir && m.partition === 0xffffffff) compactions++ }
  rotateChannel.subscribe(onRotate)
  t.teardown(() => rotateChannel.unsubscribe(onRotate))
  for (let i = 0; compactions < 3; i++) await wal.group(`g${i % 50}`).commit(0, 1)
  // Power goes without a close: what the last meta compaction kept must survive it.
  disk.cutPowerAfter(0)
  await wal.close().catch(() => {})
  disk.powerLoss({ mode: 'drop' })
  wal = await WriteAhead.open(dir, opts)
  t.is(wal.offsets(0).end, 1)
  t.true(wal.groups().length > 0, 'the cursors carried by the last compaction survived')
  await wal.close()
})

test("with sync: 'never', a power loss just after rotations, or at any point of close(), leaves a log that opens; a finished close() lost nothing", async (t) => {
  // 'never' may lose what was written since the last close, but only from the end: a newer
  // segment surviving an older one's lost tail (or header) is a log that cannot open.
  const N = 80
  let cuts = 0
  for (let k = 0; ; k++) {
    for (const seed of [1, 2, 3]) {
      const disk = new SimDisk()
      const opts = { io: disk.io, sync: 'never', segmentBytes: 4096, preallocate: false }
      const wal = await WriteAhead.open('/sim/close', opts)
      // Close right after a rotation, while the segment left behind is still being sealed.
      let n = 0
      while (n < N || wal.segments(0).length < 3 || wal.segments(0).at(-2).sealed) await wal.append(0, recordFor(0, n++))
      disk.cutPowerAfter(k)
      await wal.close().catch(() => {})
      const cut = disk.powerCut
      disk.powerLoss({ mode: 'tear4k', rng: mulberry32(k * 7 + seed) })
      const again = await WriteAhead.open('/sim/close', opts)
      let next = 0
      for await (const rec of again.iterate(0)) {
        t.true(rec.offset === next++ && sameRecord(rec, 0, rec.offset), `cut after ${k} operations, seed ${seed}: offset ${rec.offset}`)
      }
      t.is(next, again.offsets(0).end)
      await again.close()
      if (!cut) {
        t.is(next, n, 'a close() that finished made every record durable')
        t.true(cuts > 3, `close() ran ${cuts / 3} operations`)
        return
      }
      cuts++
    }
  }
})

test('a tail recovery keeps from a commit whose sync never returned is made durable before a rotation records it', async (t) => {
  // The next segment's header records where the old one ends; were that tail still only in the
  // page cache, a power loss would leave the old segment short of its record: a false CORRUPTED.
  const rec = (n, len) => ({ value: Buffer.alloc(len, n & 0xff) })
  for (const mode of MODES) {
    for (let seed = 1; seed <= 5; seed++) {
      const disk = new SimDisk()
      const opts = { io: disk.io, sync: 'always', segmentBytes: 4096, preallocate: false }
      let wal = await WriteAhead.open('/sim/kept', opts)
      let n = 0
      for (; n < 5; n++) await wal.append(0, rec(n, 500))
      // The process dies inside the next commit's fdatasync: its bytes stay in the page cache.
      let armed = true
      disk.onOperation(({ op, path }) => {
        if (armed && op.startsWith('datasync') && String(path).endsWith('.log')) { armed = false; disk.cutPowerAfter(0); throw new PowerCut('cut') }
      })
      await t.throwsAsync(wal.append(0, rec(n++, 700)))
      await wal.close().catch(() => {})
      disk.crash()
      disk.onOperation(() => {})
      wal = await WriteAhead.open('/sim/kept', opts)
      const kept = wal.offsets(0).end
      await wal.append(0, rec(n++, 850)) // does not fit: a rotation records the old segment's end
      t.is(wal.segments(0).length, 2)
      disk.cutPowerAfter(0)
      await wal.close().catch(() => {})
      disk.powerLoss({ mode, rng: mulberry32(seed) })
      const again = await WriteAhead.open('/sim/kept', opts)
      t.is(again.offsets(0).end, kept + 1, `${mode} ${seed}`)
      t.deepEqual((await collect(again.iterate(0))).map((r) => r.offset), Array.from({ length: kept + 1 }, (_, i) => i))
      await again.close()
      t.true((await WriteAhead.verify('/sim/kept', { io: disk.io })).ok, `${mode} ${seed}: verify agrees with open`)
    }
  }
})

test('a log created in new directories survives a power loss right after its first acknowledged append', async (t) => {
  // The new directories' names live in their parents: unless those are synced, a power loss can
  // take the whole log with it. Likewise a partition directory created on a later open.
  const disk = new SimDisk()
  const dir = '/new/nested/wal'
  const wal = await WriteAhead.open(dir, { io: disk.io, partitions: 2 })
  t.is(await wal.append(1, Buffer.from('first')), 0)
  disk.cutPowerAfter(0) // nothing more reaches the disk, close() included
  await wal.close().catch(() => {})
  disk.powerLoss({ mode: 'drop' })
  const again = await WriteAhead.open(dir, { io: disk.io, partitions: 3 })
  t.deepEqual((await collect(again.iterate(1))).map((r) => r.value.toString()), ['first'])
  t.is(await again.append(2, Buffer.from('in a new partition')), 0)
  disk.cutPowerAfter(0)
  await again.close().catch(() => {})
  disk.powerLoss({ mode: 'drop' })
  const third = await WriteAhead.open(dir, { io: disk.io })
  t.is(third.partitions, 3)
  t.deepEqual((await collect(third.iterate(2))).map((r) => r.value.toString()), ['in a new partition'])
  await third.close()
})

for (const preallocate of [false, true]) {
  for (const where of ['meta', 'partition-0']) {
    test(`a writer killed between a rotation's rename and its directory sync, then a power loss: what the next writer acknowledged survives (${where}, preallocate ${preallocate})`, async (t) => {
      // The killed writer's new segment has a name only the page cache knows. The next writer
      // appends into it; unless its open made that name durable, a power loss takes the segment,
      // and everything acknowledged into it, away.
      const disk = new SimDisk()
      const dir = '/sim/rename'
      const opts = { io: disk.io, segmentBytes: 4096, metaSegmentBytes: 4096, preallocate }
      let wal = await WriteAhead.open(dir, opts)
      await wal.append(0, 'first')
      let renamed = false
      disk.onOperation(({ op, to }) => {
        if (op === 'rename' && String(to).endsWith('.log') && String(to).includes(`/${where}/`)) renamed = true
        else if (renamed && op === 'syncDir') { disk.cutPowerAfter(0); throw new PowerCut('killed between rename and directory sync') }
      })
      for (let i = 0; i < 10000 && !renamed; i++) {
        try { if (where === 'meta') await wal.group('g').commit(0, 1); else await wal.append(0, 'x'.repeat(200)) } catch { break }
      }
      t.true(renamed, 'a rotation was interrupted')
      await wal.close().catch(() => {})
      disk.onOperation(() => {})
      disk.crash()
      wal = await WriteAhead.open(dir, opts)
      const end = wal.offsets(0).end
      await wal.append(0, 'acknowledged after the crash')
      await wal.group('g').commit(0, end + 1)
      disk.cutPowerAfter(0)
      await wal.close().catch(() => {})
      disk.powerLoss({ mode: 'drop' })
      const again = await WriteAhead.open(dir, opts)
      t.is(again.offsets(0).end, end + 1, 'the acknowledged append survived')
      t.is(again.group('g').committed(0), end + 1, 'the acknowledged cursor survived')
      await again.close()
    })
  }
}

test("with sync: 'interval', a group cursor a power loss leaves past the end goes back to it on open, so the group reads the new records", async (t) => {
  const disk = new SimDisk()
  const opts = { io: disk.io, sync: 'interval', syncIntervalMs: 60_000 }
  const wal = await WriteAhead.open('/sim/cursor', opts)
  await wal.appendBatch(0, ['a', 'b'])
  await wal.close()
  const wal2 = await WriteAhead.open('/sim/cursor', opts)
  await wal2.appendBatch(0, ['c', 'd', 'e'])
  // The meta log syncs every group commit; the partition has not synced c, d, e yet.
  await wal2.group('g').commit(0, 5)
  disk.cutPowerAfter(0)
  await wal2.close().catch(() => {})
  disk.powerLoss({ mode: 'drop' })
  const again = await WriteAhead.open('/sim/cursor', opts)
  t.is(again.offsets(0).end, 2)
  t.is(again.group('g').committed(0), 2)
  await again.appendBatch(0, ['new-2', 'new-3', 'new-4', 'new-5'])
  const got = await collect(again.readable(0, { group: 'g' }))
  t.deepEqual(got.map((r) => String(r.value)), ['new-2', 'new-3', 'new-4', 'new-5'])
  await again.close()
})

test("with sync: 'interval', a rotation whose sync of the old segment fails, even with ENOSPC, fences the partition: a power loss then leaves a log that opens and reads whole", async (t) => {
  // The old segment holds acknowledged appends no sync has covered yet. A failed fdatasync may
  // have dropped them from the page cache for good (fsyncgate), so it cannot be taken for a full
  // disk, undone and retried: the retried rotation's sync would pass, and the new segment would
  // record an end the old one no longer reaches.
  for (const code of ['ENOSPC', 'EIO']) {
    const disk = new SimDisk()
    const dir = `/sim/rotation-sync-${code}`
    const opts = { io: disk.io, sync: 'interval', syncIntervalMs: 60_000, segmentBytes: 4096, preallocate: false }
    const wal = await WriteAhead.open(dir, opts)
    let n = 0
    await wal.append(0, recordFor(0, n++)) // creates the first segment, synced
    disk.failNextSync({ code, match: (p) => p.endsWith('/partition-0/00000000000000000000.log') })
    let failure = null
    while (failure === null && n < 100) {
      try { await wal.append(0, recordFor(0, n)); n++ } catch (err) { failure = err }
    }
    t.is(failure?.code, code === 'ENOSPC' ? 'DISK_FULL' : 'SYNC_FAILED', code)
    await t.throwsAsync(wal.append(0, recordFor(0, n)), { code: 'PARTITION_FAILED' }, `${code}: the partition is fenced`)
    await wal.close().catch(() => {})
    disk.powerLoss({ mode: 'drop' })
    const again = await WriteAhead.open(dir, opts)
    let next = 0
    for await (const rec of again.iterate(0)) t.true(rec.offset === next++ && sameRecord(rec, 0, rec.offset), `${code}: offset ${rec.offset}`)
    t.is(next, again.offsets(0).end)
    await again.append(0, recordFor(0, next))
    await again.close()
    t.true((await WriteAhead.verify(dir, { io: disk.io })).ok, `${code}: verify finds no hole`)
  }
})
