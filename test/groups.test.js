import test from 'ava'
import { once } from 'node:events'
import { WriteAhead, WalError } from '../dist/src/index.js'
import { tmpDir, collect, segmentFiles } from './helpers/tmp.js'
import { faultyIO } from './helpers/faulty-io.js'

async function filled (t, n, opts = {}) {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir, { partitions: 2, ...opts })
  for (let i = 0; i < n; i += 50) await wal.appendBatch(0, Array.from({ length: Math.min(50, n - i) }, (_, j) => `v${i + j}`.padEnd(60, '.')))
  return { wal, dir }
}

test('commit, committed, lag and seek; durable across reopen', async (t) => {
  const { wal, dir } = await filled(t, 100)
  const g = wal.group('billing')
  t.is(g.committed(0), null)
  t.is(g.lag(0), 100)
  await g.commit(0, 40)
  t.is(g.committed(0), 40)
  t.is(g.lag(0), 60)
  await g.seek(0, 10)
  t.is(g.committed(0), 10)
  await t.throwsAsync(g.commit(0, 101), { code: 'OFFSET_OUT_OF_RANGE' })
  await t.throwsAsync(g.commit(0, -1), { code: 'INVALID_OFFSET' })
  await t.throwsAsync(g.commit(7, 1), { code: 'UNKNOWN_PARTITION' })
  t.throws(() => wal.group(''), { code: 'INVALID_ARGUMENT' })
  await wal.group('other/with:odd chars').commit(1, 0)
  t.deepEqual(wal.groups(), [
    { name: 'billing', partitions: [{ partition: 0, committed: 10, lag: 90 }, { partition: 1, committed: null, lag: 0 }] },
    { name: 'other/with:odd chars', partitions: [{ partition: 0, committed: null, lag: 100 }, { partition: 1, committed: 0, lag: 0 }] }
  ])
  await wal.close()
  const again = await WriteAhead.open(dir)
  t.is(again.group('billing').committed(0), 10)
  t.is(again.group('other/with:odd chars').committed(1), 0)
  await again.close()
})

test('a group readable starts at the committed offset, or earliest, and commit() stores what was delivered', async (t) => {
  const { wal } = await filled(t, 100)
  const first = []
  const rs = wal.readable(0, { group: 'g' })
  for await (const r of rs) {
    first.push(r.offset)
    if (r.offset === 29) break
  }
  t.is(first[0], 0)
  t.is(rs.delivered, 30)
  await rs.commit()
  t.is(wal.group('g').committed(0), 30)
  const rest = await collect(wal.readable(0, { group: 'g' }))
  t.is(rest[0].offset, 30)
  t.is(rest.length, 70)
  await wal.close()
})

test('autoCommit commits what was delivered', async (t) => {
  const { wal } = await filled(t, 100)
  const rs = wal.readable(0, { group: 'auto', live: true, autoCommit: { intervalMs: 5 } })
  const commits = []
  rs.on('commit', (at) => commits.push(at))
  let n = 0
  for await (const r of rs) {
    n++
    if (r.offset === 49) {
      // Each commit is of what the consumer has taken, never more.
      const [at] = await once(rs, 'commit')
      t.true(at <= 50 && at > 0, `committed ${at}`)
    }
    if (r.offset === 99) break
  }
  t.is(n, 100)
  t.true(commits.every((c, i) => i === 0 || c >= commits[i - 1]))
  t.true(wal.group('auto').committed(0) <= 100)
  await wal.close()
})

test('only one live reader per group and partition, unless shared', async (t) => {
  const { wal } = await filled(t, 10)
  const a = wal.readable(0, { group: 'solo', live: true })
  const err = t.throws(() => wal.readable(0, { group: 'solo', live: true }), { instanceOf: WalError })
  t.is(err.code, 'GROUP_BUSY')
  const other = wal.readable(1, { group: 'solo', live: true })
  const s1 = wal.readable(0, { group: 'shared', live: true, share: true })
  const s2 = wal.readable(0, { group: 'shared', live: true, share: true })
  for (const r of [a, other, s1, s2]) r.destroy()
  await wal.close()
})

test('seek repositions the live reader of the group', async (t) => {
  const { wal } = await filled(t, 100)
  const rs = wal.readable(0, { group: 's', live: true, highWaterMark: 1 })
  const seen = []
  for await (const r of rs) {
    seen.push(r.offset)
    if (r.offset === 5) await wal.group('s').seek(0, 90)
    if (r.offset === 99) break
  }
  t.true(seen.includes(90))
  t.true(seen.indexOf(90) > seen.indexOf(5))
  t.true(seen.length < 60, `${seen.length} records seen`)
  await wal.close()
})

test('retention with keepUnconsumed keeps segments a group has not committed past', async (t) => {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir, { segmentBytes: 16 * 1024, preallocate: false, retention: { maxBytes: 20 * 1024, keepUnconsumed: true } })
  await wal.group('slow').commit(0, 0)
  for (let i = 0; i < 40; i++) await wal.appendBatch(0, Array.from({ length: 20 }, () => 'k'.repeat(80)))
  wal.applyRetention()
  t.is(wal.offsets(0).start, 0, 'nothing deleted while the group sits at 0')
  await wal.group('slow').commit(0, 500)
  wal.applyRetention()
  const { start } = wal.offsets(0)
  t.true(start > 0 && start <= 500, `start ${start}`)
  t.true(segmentFiles(dir).length >= 2)
  await wal.close()
})

test('keepUnconsumed reads the group cursors once a retention pass, for every partition; a group with no cursor in a partition holds it at 0', async (t) => {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir, { partitions: 3, segmentBytes: 16 * 1024, preallocate: false, retention: { maxBytes: 20 * 1024, keepUnconsumed: true } })
  await wal.group('a').commit(0, 0)
  for (let i = 0; i < 40; i++) await Promise.all([0, 1, 2].map((p) => wal.appendBatch(p, Array.from({ length: 20 }, () => 'k'.repeat(80)))))
  t.deepEqual([0, 1, 2].map((p) => wal.offsets(p).start), [0, 0, 0], 'a has consumed nothing anywhere')
  await wal.group('a').commit(0, 500)
  await wal.group('a').commit(1, 500)
  await wal.group('b').commit(0, 600)
  // Each partition listed every cursor again: groups × partitions² work a tick.
  const host = wal.groupHost
  const metaNames = host.metaNames
  let listed = 0
  host.metaNames = () => { listed++; return metaNames() }
  wal.applyRetention()
  t.is(listed, 1, 'one listing for 3 partitions')
  const [p0, p1, p2] = [0, 1, 2].map((p) => wal.offsets(p).start)
  t.true(p0 > 0 && p0 <= 500, `partition 0 kept from a's 500: start ${p0}`)
  t.is(p1, 0, 'b never committed in partition 1: it holds it at 0')
  t.is(p2, 0, 'no group committed in partition 2')
  await wal.close()
})

test('applyRetention once close() has begun is CLOSED and deletes nothing, as trimBefore', async (t) => {
  const dir = tmpDir(t)
  const wal = await WriteAhead.open(dir, { segmentBytes: 16 * 1024, preallocate: false, retention: { maxBytes: 20 * 1024, keepUnconsumed: true } })
  await wal.group('slow').commit(0, 0)
  for (let i = 0; i < 40; i++) await wal.appendBatch(0, Array.from({ length: 20 }, () => 'k'.repeat(80)))
  // Retention would now delete the segments below 500; nothing awaits from here to close().
  await wal.group('slow').commit(0, 500)
  const files = segmentFiles(dir)
  const closing = wal.close()
  t.throws(() => wal.applyRetention(), { code: 'CLOSED' })
  await t.throwsAsync(wal.trimBefore(0, 500), { code: 'CLOSED' })
  await closing
  t.deepEqual(segmentFiles(dir), files, 'nothing deleted while the partitions were being closed')
  t.throws(() => wal.applyRetention(), { code: 'CLOSED' })
  // The next open applies it.
  const again = await WriteAhead.open(dir, { segmentBytes: 16 * 1024, preallocate: false, retention: { maxBytes: 20 * 1024, keepUnconsumed: true } })
  t.true(again.offsets(0).start > 0)
  await again.close()
})

test('the meta log stays bounded under many group commits', async (t) => {
  const fs = await import('node:fs')
  const { wal, dir } = await filled(t, 10)
  // 200 groups commit in every round: 200,000 cursor updates, enough to rotate the meta log.
  const groups = Array.from({ length: 200 }, (_, j) => wal.group(`busy-${j}`))
  for (let i = 0; i < 1000; i++) await Promise.all(groups.map((g, j) => g.commit(0, (i + j) % 10)))
  const g = groups[0]
  await g.commit(0, 7)
  const files = fs.readdirSync(`${dir}/meta`).filter((f) => f.endsWith('.log'))
  const bytes = files.reduce((n, f) => n + fs.statSync(`${dir}/meta/${f}`).size, 0)
  t.true(bytes < 8 * 1024 * 1024, `${bytes} bytes in ${files.length} meta segments`)
  t.true(files.every((f) => Number(f.slice(0, 20)) > 0), 'the meta log was compacted: its first segment is gone')
  // A compacted segment is deleted while its seal is still in flight; the seal must not then
  // write index files for it, one pair per compaction, for ever.
  const orphans = () => {
    const names = fs.readdirSync(`${dir}/meta`)
    return names.filter((f) => /\.(time)?index$/.test(f) && !names.includes(f.replace(/\.(time)?index$/, '.log')))
  }
  t.deepEqual(orphans(), [], 'no index file outlives its compacted segment')
  await wal.close()
  // Such files left by an earlier build are removed on open.
  fs.writeFileSync(`${dir}/meta/${'0'.repeat(20)}.index`, 'left behind')
  fs.writeFileSync(`${dir}/meta/${'0'.repeat(20)}.timeindex`, 'left behind')
  const again = await WriteAhead.open(dir)
  t.deepEqual(orphans(), [])
  t.is(again.group('busy-0').committed(0), 7)
  t.is(again.group('busy-199').committed(0), (999 + 199) % 10)
  t.is(again.groups().length, 200)
  await again.close()
})

test('autoCommit never commits the record still in the consumer\'s hands, so a crash while processing it loses nothing', async (t) => {
  const { wal } = await filled(t, 20)
  const rs = wal.readable(0, { group: 'careful', live: true, autoCommit: { intervalMs: 1 } })
  for await (const r of rs) {
    if (r.offset === 5) {
      // Still processing record 5: the timer's commits must leave it to be delivered again.
      const [at] = await once(rs, 'commit')
      t.is(at, 5)
      t.is(wal.group('careful').committed(0), 5)
      break
    }
  }
  await wal.close()
})

test('autoCommit commits once more when the reader is left by break, ends, or the log closes', async (t) => {
  const { wal, dir } = await filled(t, 20)
  // Left by break long before the first interval: everything before the record in hand is committed.
  for await (const r of wal.readable(0, { group: 'brk', live: true, autoCommit: { intervalMs: 60_000 } })) {
    if (r.offset === 3) break
  }
  t.is(wal.group('brk').committed(0), 3)
  // A non-live reader read to its end.
  t.is((await collect(wal.readable(0, { group: 'end', autoCommit: { intervalMs: 60_000 } }))).length, 20)
  t.is(wal.group('end').committed(0), 19)
  // A live reader still open when the log closes: no CLOSED error, and the commit is durable.
  const rs = wal.readable(0, { group: 'open', live: true, autoCommit: { intervalMs: 60_000 } })
  const errors = []
  rs.on('error', (err) => errors.push(err))
  const it = rs[Symbol.asyncIterator]()
  for (let i = 0; i < 8; i++) await it.next()
  await wal.close()
  for (;;) if ((await it.next()).done) break
  t.deepEqual(errors, [])
  const again = await WriteAhead.open(dir)
  t.is(again.group('open').committed(0), 7)
  t.is(again.group('brk').committed(0), 3)
  await again.close()
})

test('a reader destroyed by an error makes no last autoCommit (its sink may not have processed what it took)', async (t) => {
  const { wal } = await filled(t, 20)
  const rs = wal.readable(0, { group: 'failed', live: true, autoCommit: { intervalMs: 5 } })
  const it = rs[Symbol.asyncIterator]()
  for (let i = 0; i < 5; i++) await it.next()
  // Not once(): it rejects on the 'error' event that comes first.
  const closed = new Promise((resolve) => rs.on('close', resolve))
  rs.on('error', () => {})
  rs.destroy(new Error('sink failed'))
  await closed
  t.is(wal.group('failed').committed(0), null)
  // Nor any later: its timer is gone, so it cannot move the group back under the next reader.
  t.is(rs.timer, null)
  await wal.close()
})

test('a readable refused for its `from` does not keep the group busy', async (t) => {
  const { wal } = await filled(t, 10)
  t.throws(() => wal.readable(0, { group: 'g', live: true, from: -1 }), { code: 'INVALID_OFFSET' })
  t.throws(() => wal.readable(0, { group: 'g', live: true, from: { timestamp: 'soon' } }), { code: 'INVALID_ARGUMENT' })
  const rs = wal.readable(0, { group: 'g', live: true })
  rs.destroy()
  await wal.close()
})

test('after a seek, records the reader buffered before it do not move its delivered position back past the seek', async (t) => {
  const { wal } = await filled(t, 200)
  const rs = wal.readable(0, { group: 'sk', live: true })
  const it = rs[Symbol.asyncIterator]()
  t.is((await it.next()).value.offset, 0)
  t.true(rs._readableState.queue.length > 10, 'records are buffered ahead')
  for (let i = 0; i < 99; i++) await it.next()
  await wal.group('sk').seek(0, 50)
  // The records buffered before the seek (100, 101, ...) are still handed out, then offset 50.
  let r
  do {
    r = (await it.next()).value
    if (r.offset !== 50) {
      t.true(r.offset >= 100)
      await rs.commit()
      t.is(wal.group('sk').committed(0), 50)
    }
  } while (r.offset !== 50)
  await rs.commit()
  t.is(wal.group('sk').committed(0), 51)
  rs.destroy()
  await wal.close()
})

test('a read-only open refuses autoCommit up front', async (t) => {
  const { wal, dir } = await filled(t, 10)
  const ro = await WriteAhead.open(dir, { readOnly: true })
  t.throws(() => ro.readable(0, { group: 'g', autoCommit: { intervalMs: 10 } }), { code: 'READ_ONLY' })
  await ro.close()
  await wal.close()
})

test('a seek wins over the reader\'s own last autoCommit, issued on close or break while the seek is being written', async (t) => {
  const { wal, dir } = await filled(t, 20)
  const rs = wal.readable(0, { group: 'sc', live: true, autoCommit: { intervalMs: 60_000 } })
  const it = rs[Symbol.asyncIterator]()
  for (let i = 0; i < 3; i++) await it.next()
  const seek = wal.group('sc').seek(0, 12)
  const closing = wal.close()
  await seek
  await closing
  const again = await WriteAhead.open(dir)
  t.is(again.group('sc').committed(0), 12)
  for await (const r of again.readable(0, { group: 'sb', live: true, autoCommit: { intervalMs: 60_000 } })) {
    if (r.offset === 2) {
      void again.group('sb').seek(0, 15)
      break
    }
  }
  t.is(again.group('sb').committed(0), 15)
  await again.close()
})

test('unshift gives a record back: the positions step back to it, and the records it re-buffers were not handed out', async (t) => {
  const { wal } = await filled(t, 200)
  const rs = wal.readable(0, { group: 'un', live: true })
  const it = rs[Symbol.asyncIterator]()
  let last
  for (let i = 0; i < 3; i++) last = (await it.next()).value
  t.is(last.offset, 2)
  t.true(rs._readableState.queue.length > 10)
  rs.unshift(last)
  await rs.commit()
  t.is(wal.group('un').committed(0), 2)
  t.is((await it.next()).value.offset, 2)
  t.is((await it.next()).value.offset, 3)
  await rs.commit()
  t.is(wal.group('un').committed(0), 4)
  rs.destroy()
  await wal.close()
})

test('group cursors that would outgrow a meta segment are refused (BATCH_TOO_LARGE), and every existing group keeps committing across rotations and reopens', async (t) => {
  const fs = await import('node:fs')
  const dir = tmpDir(t)
  const opts = { partitions: 4, metaSegmentBytes: 4096 }
  let wal = await WriteAhead.open(dir, opts)
  for (let p = 0; p < 4; p++) await wal.appendBatch(p, ['a', 'b', 'c'])
  // Every new meta segment starts with a snapshot of every cursor. Once that snapshot no longer
  // left room for a commit, each rotation failed, which fenced the meta log: SYNC_FAILED, then
  // PARTITION_FAILED for every group's commit, and again after every reopen.
  let made = 0
  let refused = null
  for (; made < 500 && refused === null; made++) {
    await wal.group(`consumer-group-number-${made}`).commit(made % 4, 1).catch((err) => { refused = err })
  }
  t.truthy(refused, 'some cursor is refused')
  t.is(refused.code, 'BATCH_TOO_LARGE')
  t.regex(refused.message, /metaSegmentBytes/)
  const groups = made - 1
  t.is(wal.groups().length, groups)
  // The groups that exist still commit, through many meta rotations (each commit is one record).
  const names = () => fs.readdirSync(`${dir}/meta`).filter((f) => f.endsWith('.log'))
  const before = names()[0]
  for (let i = 0; i < 300; i++) await wal.group(`consumer-group-number-${i % groups}`).commit((i % groups) % 4, 1 + (i % 3))
  t.not(names()[0], before, 'the meta log rotated and compacted')
  // Bursts of commits to every group, two per group: several batches per meta commit, whose
  // rotation counts a name updated twice once.
  for (let r = 0; r < 20; r++) {
    await Promise.all(Array.from({ length: 2 * groups }, (_, i) => wal.group(`consumer-group-number-${i % groups}`).commit((i % groups) % 4, 1 + ((r + i) % 3))))
  }
  await wal.close()
  wal = await WriteAhead.open(dir, opts)
  t.is(wal.groups().length, groups)
  await wal.group('consumer-group-number-0').commit(0, 3)
  await t.throwsAsync(wal.group('one-more-group-than-fits').commit(0, 1), { code: 'BATCH_TOO_LARGE' })
  await wal.close()
  // The remedy the error names: a larger meta segment takes more groups.
  wal = await WriteAhead.open(dir, { metaSegmentBytes: 64 * 1024 })
  await wal.group('one-more-group-than-fits').commit(0, 1)
  t.is(wal.groups().length, groups + 1)
  t.is(wal.group('consumer-group-number-0').committed(0), 3)
  await wal.close()
})

test('a seek refused (read-only open) leaves the group\'s live reader where it was', async (t) => {
  const { wal, dir } = await filled(t, 100)
  await wal.group('ro').commit(0, 1)
  const ro = await WriteAhead.open(dir, { readOnly: true })
  const rs = ro.readable(0, { group: 'ro', live: true, highWaterMark: 1 })
  const it = rs[Symbol.asyncIterator]()
  t.is((await it.next()).value.offset, 1)
  await t.throwsAsync(ro.group('ro').seek(0, 90), { code: 'READ_ONLY' })
  // It jumped to 90 although nothing was stored, silently skipping 87 records.
  const seen = []
  for (let i = 0; i < 5; i++) seen.push((await it.next()).value.offset)
  t.deepEqual(seen, [2, 3, 4, 5, 6])
  t.is(rs.delivered, 7)
  rs.destroy()
  await ro.close()
  await wal.close()
})

test('a group name that is not well-formed Unicode (a lone surrogate) is INVALID_ARGUMENT, not a bare URIError', async (t) => {
  const { wal } = await filled(t, 10)
  for (const name of ['\uD800', 'a\uDFFFb', 'end\uDBFF']) {
    t.throws(() => wal.group(name), { code: 'INVALID_ARGUMENT' })
    t.throws(() => wal.readable(0, { group: name }), { code: 'INVALID_ARGUMENT' })
  }
  // A surrogate pair is a character like any other.
  await wal.group('emoji \uD83D\uDE00').commit(0, 3)
  t.is(wal.group('emoji \uD83D\uDE00').committed(0), 3)
  t.deepEqual(wal.groups().map((g) => g.name), ['emoji \uD83D\uDE00'])
  await wal.close()
})

test('a live group reader being destroyed gives way at once: the next one (destroy then reopen, as RxJS resubscribes) starts where its last autoCommit leaves the group', async (t) => {
  const { wal } = await filled(t, 20)
  const first = wal.readable(0, { group: 'h', live: true, autoCommit: { intervalMs: 60_000 } })
  const it = first[Symbol.asyncIterator]()
  for (let i = 0; i < 5; i++) await it.next()
  const closed = once(first, 'close')
  first.destroy()
  // Was GROUP_BUSY until the destroyed reader's last commit was durable and its lease released.
  const second = wal.readable(0, { group: 'h', live: true })
  t.is((await second[Symbol.asyncIterator]().next()).value.offset, 4, 'from the last autoCommit, not the older durable cursor')
  await closed
  t.is(wal.group('h').committed(0), 4)
  // The first one's release left the lease with the second, which is not being destroyed.
  t.throws(() => wal.readable(0, { group: 'h', live: true }), { code: 'GROUP_BUSY' })
  second.destroy()
  // Without autoCommit, the next reader starts from the durable cursor.
  await wal.group('n').commit(0, 7)
  const a = wal.readable(0, { group: 'n', live: true })
  await a[Symbol.asyncIterator]().next()
  a.destroy()
  const b = wal.readable(0, { group: 'n', live: true })
  t.is((await b[Symbol.asyncIterator]().next()).value.offset, 7)
  b.destroy()
  await wal.close()
})

test('an autoCommit interval longer than a timer can wait is INVALID_ARGUMENT (it became 1 ms: a meta commit per record)', async (t) => {
  const { wal } = await filled(t, 10)
  for (const intervalMs of [2 ** 31, Number.MAX_SAFE_INTEGER]) {
    t.throws(() => wal.readable(0, { group: 'g', live: true, autoCommit: { intervalMs } }), { code: 'INVALID_ARGUMENT', message: /2147483647/ })
  }
  // The longest one a timer honours is taken, and commits once, at the end.
  const rs = wal.readable(0, { group: 'g', live: true, autoCommit: { intervalMs: 2 ** 31 - 1 } })
  const it = rs[Symbol.asyncIterator]()
  for (let i = 0; i < 5; i++) await it.next()
  const closed = once(rs, 'close')
  rs.destroy()
  await closed
  t.is(wal.group('g').committed(0), 4)
  await wal.close()
})

test('a reader started by a handover and destroyed before it took anything hands the same position on', async (t) => {
  const { wal } = await filled(t, 20)
  const a0 = wal.readable(0, { group: 'chain', live: true, autoCommit: { intervalMs: 60_000 } })
  const it = a0[Symbol.asyncIterator]()
  for (let i = 0; i < 5; i++) await it.next()
  // All in one turn, as RxJS retry resubscribing twice does: a0's last commit (4) is still in flight.
  a0.destroy()
  const a = wal.readable(0, { group: 'chain', live: true, autoCommit: { intervalMs: 60_000 } })
  a.destroy()
  const b = wal.readable(0, { group: 'chain', live: true })
  t.is(wal.group('chain').committed(0), null, 'nothing durable yet')
  t.is((await b[Symbol.asyncIterator]().next()).value.offset, 4, 'where a0 left the group, not the earliest offset')
  b.destroy()
  await wal.close()
})

test('retention does not run from a seal that finishes while close() waits for readers\' last commits', async (t) => {
  const dir = tmpDir(t)
  const io = faultyIO()
  const opts = { io, partitions: 2, segmentBytes: 4096, preallocate: false, retention: { maxBytes: 0 } }
  const wal = await WriteAhead.open(dir, opts)
  const p0 = () => segmentFiles(dir, 0)
  while (wal.segments(0).length < 2) await wal.append(0, 'x'.repeat(200))
  const reader = wal.readable(1, { group: 'g', live: true, autoCommit: { intervalMs: 60_000 } })
  await wal.append(1, 'r')
  await reader[Symbol.asyncIterator]().next()
  // Each sync is let through one at a time, the seal of partition 0's open segment first.
  io.holdSyncs()
  const open = wal.segments(0).at(-1).base
  while (wal.segments(0).at(-1).base === open) await wal.append(0, 'x'.repeat(200))
  await io.whenHeld(1) // the seal of the segment just left behind
  const sealed = p0()
  // close() issues the reader's last commit; with an append to partition 1 in the same turn,
  // both syncs go to the thread pool (held) and close() waits for the commit.
  const last = wal.append(1, 'last')
  const closing = wal.close()
  await io.whenHeld(3)
  await io.releaseOne()
  t.deepEqual(p0(), sealed, 'no segment deleted while the log was closing')
  io.releaseSyncs()
  await last
  await closing
  // The next open applies it.
  const again = await WriteAhead.open(dir, { ...opts, io: undefined })
  t.true(p0().length < sealed.length)
  await again.close()
})

test('a reader started by a handover that commits by itself hands on its own commit, not the position it was handed', async (t) => {
  const { wal } = await filled(t, 20)
  const a0 = wal.readable(0, { group: 'own', live: true, autoCommit: { intervalMs: 60_000 } })
  const it0 = a0[Symbol.asyncIterator]()
  for (let i = 0; i < 5; i++) await it0.next()
  a0.destroy()
  const a = wal.readable(0, { group: 'own', live: true })
  const it = a[Symbol.asyncIterator]()
  for (let i = 0; i < 6; i++) await it.next() // offsets 4..9
  await a.commit() // 10, durable
  a.destroy()
  const b = wal.readable(0, { group: 'own', live: true })
  t.is((await b[Symbol.asyncIterator]().next()).value.offset, 10)
  b.destroy()
  await wal.close()
})
