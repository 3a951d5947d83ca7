import test from 'ava'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import fs from 'node:fs'
import path from 'node:path'
import { WriteAhead } from '../dist/src/index.js'
import { tmpDir, collect } from './helpers/tmp.js'
import { nextMessage, writeUntilPreparedSegment } from './helpers/prepared.js'
import { faultyIO } from './helpers/faulty-io.js'

/** This log's partition-0 messages on a writeahead channel, as they come. */
function record (t, dir, name) {
  const seen = []
  const on = (m) => { if (m.dir === path.normalize(dir) && m.partition === 0) seen.push(m) }
  subscribe(name, on)
  t.teardown(() => unsubscribe(name, on))
  return seen
}

test('the next segment is zero-filled ahead while commits are small, not while they average 256 KiB or more', async (t) => {
  const dir = tmpDir(t)
  const prepares = record(t, dir, 'writeahead:prepare')
  const rotations = record(t, dir, 'writeahead:rotate')
  const mine = (m) => m.dir === path.normalize(dir) && m.partition === 0 && m.ok
  const wal = await WriteAhead.open(dir, { segmentBytes: 8 * 1024 * 1024 })
  const preparing = () => fs.readdirSync(path.join(dir, 'partition-0')).some((n) => n.endsWith('.prepared.tmp'))

  // ~1 MiB a commit, an 8 MiB segment. The first commits start one zero-fill (the average starts
  // at 0); once it is used, the average is past 256 KiB and no other is started.
  const big = Array.from({ length: 4096 }, (_, i) => `big ${i} `.padEnd(240, '.'))
  const bigUntil = async (done) => { while (!done()) await wal.appendBatch(0, big) }
  await bigUntil(() => rotations.some((r) => r.prepared))
  const used = rotations.findIndex((r) => r.prepared)
  await bigUntil(() => rotations.length > used + 1)
  t.false(rotations[used + 1].prepared, 'large commits rotate into a plain file')
  t.is(prepares.length, 1, 'one zero-fill, from before the average rose')
  t.false(preparing(), 'and none is under way')

  // Small commits: the average falls below the threshold and preparation resumes (the commit that
  // starts it creates the file synchronously).
  const prepared = nextMessage('writeahead:prepare', mine)
  let small = 0
  while (!preparing() && small < 100) await wal.append(0, `small ${small++}`)
  t.true(small >= 2 && small <= 40, `preparation resumed after ${small} small commits`)
  await prepared
  const before = rotations.length
  await wal.appendBatch(0, big)
  t.is(rotations.length, before + 1)
  t.true(rotations[before].prepared, 'the next commit moves into the newly prepared file')

  const offsets = wal.offsets(0)
  await wal.close()
  const again = await WriteAhead.open(dir)
  t.deepEqual(again.offsets(0), offsets)
  const values = (await collect(again.iterate(0, { from: offsets.end - 3 }))).map((r) => r.value.toString())
  t.is(values.length, 3)
  await again.close()
})

test('a rotation that cannot rename its prepared file removes it: a full disk never holds two prepared segments', async (t) => {
  const dir = tmpDir(t)
  const io = faultyIO()
  const wal = await writeUntilPreparedSegment(dir, { io })
  const part = path.join(dir, 'partition-0')
  const prepared = () => fs.readdirSync(part).filter((n) => n.endsWith('.prepared.tmp'))
  t.is(prepared().length, 1)
  io.arm('rename', 'ENOSPC', 1, ({ from }) => from.startsWith(part) && from.endsWith('.prepared.tmp'))
  const batch = Array.from({ length: 50 }, (_, i) => `record ${i} `.padEnd(64, '.'))
  let err
  while (err === undefined) await wal.appendBatch(0, batch).catch((e) => { err = e })
  t.is(err.code, 'DISK_FULL')
  t.deepEqual(prepared(), [], 'the failed rotation took its prepared file with it')
  // The next commit rotates into a plain file and the preparer fills another: one, not two.
  const next = nextMessage('writeahead:prepare', (m) => m.dir === path.normalize(dir) && m.partition === 0 && m.ok)
  await wal.appendBatch(0, batch)
  await next
  t.is(prepared().length, 1)
  await wal.close()
})
