// Recovery reads the preallocated tail of the open segment only when a power loss could have
// left stale bytes in it: after a reboot, or after a failed sync. After a process crash in the
// same boot the page cache holds every write whole or as a prefix, so the tail is all zeros.
import test from 'ava'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { WriteAhead, WalError, nodeFileIO } from '../dist/src/index.js'
import { faultyIO, notMeta } from './helpers/faulty-io.js'
import { SimDisk, PowerCut } from './helpers/sim-disk.js'
import { SEGMENT_BYTES, nextMessage, writeUntilPreparedSegment } from './helpers/prepared.js'
import { tmpDir, collect, segmentFiles, partitionPath } from './helpers/tmp.js'

const writer = fileURLToPath(new URL('./fixtures/prepared-writer.js', import.meta.url))

/** Runs the prepared-writer child until it is ready, SIGKILLs it, and returns its acknowledged end. */
function writeAndKill (dir) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, dir], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    let end = -1
    child.stderr.on('data', (d) => { err += d })
    child.stdout.on('data', (d) => {
      out += d
      const m = /ready (\d+)/.exec(out)
      if (m !== null && end < 0) { end = Number(m[1]); child.kill('SIGKILL') }
    })
    child.on('exit', (code, signal) => signal === 'SIGKILL' && end >= 0 ? resolve(end) : reject(new Error(`writer exited ${code}: ${err}`)))
  })
}

/** nodeFileIO that records every read as [file name, position, bytes] and every unlinked name. */
function spyIO (extra = {}) {
  const names = new Map()
  const io = {
    ...nodeFileIO,
    reads: [],
    unlinked: [],
    open (p, mode) { const fd = nodeFileIO.open(p, mode); names.set(fd, path.basename(p)); return fd },
    read (fd, buf, off, len, pos) {
      const n = nodeFileIO.read(fd, buf, off, len, pos)
      io.reads.push([names.get(fd), pos, n])
      return n
    },
    unlink (p) { io.unlinked.push(path.basename(p)); nodeFileIO.unlink(p) },
    ...extra
  }
  return io
}

/** Where the batches of a segment file end: the first zero length field. */
function dataEnd (file) {
  const buf = fs.readFileSync(file)
  let at = 64
  while (at + 4 <= buf.length && buf.readUInt32BE(at) !== 0) at += buf.readUInt32BE(at)
  return at
}

/** Bytes `io` read from `name` at or past `from`. */
function bytesReadPast (io, name, from) {
  let n = 0
  for (const [file, pos, got] of io.reads) if (file === name) n += Math.max(0, pos + got - Math.max(pos, from))
  return n
}

const preparedFiles = (dir) => fs.readdirSync(partitionPath(dir, 0)).filter((n) => n.endsWith('.prepared.tmp'))

test('after a process crash, open never reads the preallocated tail and finishes the prepared segment left behind', async (t) => {
  const dir = tmpDir(t)
  const acked = await writeAndKill(dir)
  const name = segmentFiles(dir).at(-1)
  const file = partitionPath(dir, 0, name)
  const end = dataEnd(file)
  t.is(fs.statSync(file).size, SEGMENT_BYTES, 'the open segment is preallocated')
  t.true(SEGMENT_BYTES - end > 64 * 1024, 'with a long zero tail')
  t.is(preparedFiles(dir).length, 1, 'the crashed writer left its next segment prepared')

  const io = spyIO()
  const wal = await WriteAhead.open(dir, { io, segmentBytes: SEGMENT_BYTES })
  t.is(wal.offsets(0).end, acked)
  // One header window past the data, and the last 68 bytes, where a seal would be.
  t.true(bytesReadPast(io, name, end) <= 4096 + 68, `read ${bytesReadPast(io, name, end)} bytes of the tail`)
  t.deepEqual(io.unlinked.filter((n) => !n.startsWith('LOCK.')), [], 'nothing was deleted (but the lock\'s temporary name)')
  t.is(fs.statSync(file).size, SEGMENT_BYTES, 'the segment stays preallocated')

  // The adopted file is finished and becomes the next segment.
  const rotated = nextMessage('writeahead:rotate', (m) => m.dir === dir && m.partition === 0)
  const batch = Array.from({ length: 50 }, () => 'x'.repeat(64))
  let settled = false
  void rotated.then(() => { settled = true })
  while (!settled) await wal.appendBatch(0, batch)
  t.true((await rotated).prepared, 'the next segment was the prepared one')
  const records = await collect(wal.iterate(0, { from: acked - 1, to: acked + 1 }))
  t.is(records[1].value.toString(), 'x'.repeat(64))
  await wal.close()
})

test('after a reboot, open reads the whole tail and cuts what a reordered write left behind a gap', async (t) => {
  const dir = tmpDir(t)
  const acked = await writeAndKill(dir)
  const name = segmentFiles(dir).at(-1)
  const file = partitionPath(dir, 0, name)
  const end = dataEnd(file)
  // A valid batch past a run of zeros: a power loss kept a later sector and lost the ones before.
  const buf = fs.readFileSync(file)
  const stale = buf.subarray(64, 64 + buf.readUInt32BE(64))
  const fd = fs.openSync(file, 'r+')
  fs.writeSync(fd, stale, 0, stale.length, end + 8192)
  fs.closeSync(fd)

  const io = spyIO({ bootId: () => 'the boot after a power loss' })
  let wal = await WriteAhead.open(dir, { io, segmentBytes: SEGMENT_BYTES })
  t.is(wal.offsets(0).end, acked)
  t.true(bytesReadPast(io, name, end) >= SEGMENT_BYTES - end, 'the whole tail was read')
  t.is(fs.statSync(file).size, end, 'the stale bytes were cut off')
  t.deepEqual(preparedFiles(dir), [], 'a prepared file is not trusted across a reboot')
  t.is(await wal.append(0, 'after the reboot'), acked)
  await wal.close()

  wal = await WriteAhead.open(dir, { io, segmentBytes: SEGMENT_BYTES })
  t.is(wal.offsets(0).end, acked + 1, 'the stale batch never became records')
  t.is((await wal.read(0, acked)).value.toString(), 'after the reboot')
  await wal.close()
})

test('a failed sync clears the stamp: the next open reads the whole tail again', async (t) => {
  const dir = tmpDir(t)
  const io = faultyIO()
  let wal = await writeUntilPreparedSegment(dir, { io })
  const name = segmentFiles(dir).at(-1)
  io.arm('datasync', 'EIO', 1, notMeta(io))
  await t.throwsAsync(wal.append(0, 'never acknowledged'), { instanceOf: WalError, code: 'SYNC_FAILED' })
  await wal.close()
  const end = dataEnd(partitionPath(dir, 0, name))

  const spy = spyIO()
  wal = await WriteAhead.open(dir, { io: spy, segmentBytes: SEGMENT_BYTES })
  t.true(bytesReadPast(spy, name, end) >= SEGMENT_BYTES - end, 'the whole tail was read')
  await wal.close()

  // Stamped again by that open, the next one trusts the tail.
  const again = spyIO()
  wal = await WriteAhead.open(dir, { io: again, segmentBytes: SEGMENT_BYTES })
  t.true(bytesReadPast(again, name, end) <= 4096 + 68)
  await wal.close()
})

test('only a writer that syncs every commit keeps the stamp', async (t) => {
  for (const sync of ['interval', 'never']) {
    const dir = tmpDir(t, sync)
    let wal = await writeUntilPreparedSegment(dir)
    await wal.close()
    const name = segmentFiles(dir).at(-1)
    const end = dataEnd(partitionPath(dir, 0, name))
    // This open still trusts the stamp its predecessor left, then clears it: with 'interval' or
    // 'never' a failed writeback can go unseen until after a crash.
    const first = spyIO()
    wal = await WriteAhead.open(dir, { io: first, segmentBytes: SEGMENT_BYTES, sync })
    t.true(bytesReadPast(first, name, end) <= 4096 + 68, sync)
    await wal.close()
    const second = spyIO()
    wal = await WriteAhead.open(dir, { io: second, segmentBytes: SEGMENT_BYTES })
    t.true(bytesReadPast(second, name, end) >= SEGMENT_BYTES - end, `${sync}: the whole tail was read`)
    await wal.close()
  }
})

test('a crash in the middle of a rotation never leaves a prepared file holding anything but zeros', async (t) => {
  const disk = new SimDisk()
  const dir = '/sim/wal'
  const wal = await writeUntilPreparedSegment(dir, { io: disk.io })
  const acked = wal.offsets(0).end
  // The process dies just before the next segment is renamed into place: its header and first
  // batch are written, under whatever name the rotation gave the prepared file.
  let cut = false
  disk.onOperation((op) => {
    if (op.op === 'rename' && op.to.endsWith('.log') && !cut) {
      cut = true
      disk.cutPowerAfter(0) // nothing after this runs, not even the rotation's own cleanup
      throw new PowerCut('killed while rotating')
    }
  })
  const batch = Array.from({ length: 50 }, () => 'y'.repeat(64))
  for (;;) {
    try { await wal.appendBatch(0, batch) } catch { break }
  }
  t.true(cut, 'the crash hit the rotation')
  await wal.close().catch(() => {})
  disk.crash()
  disk.onOperation(() => {})

  const reopened = await WriteAhead.open(dir, { io: disk.io, segmentBytes: SEGMENT_BYTES })
  t.true(reopened.offsets(0).end >= acked)
  const part = path.join(dir, 'partition-0')
  const prepared = disk.listDir(part).filter((n) => n.endsWith('.prepared.tmp'))
  t.true(prepared.length <= 1)
  for (const n of prepared) t.true(disk.readFile(path.join(part, n)).every((b) => b === 0), `${n} holds only zeros`)
  t.false(disk.listDir(part).some((n) => n.endsWith('.log.tmp')), 'the half-made segment was removed')
  await reopened.close()
})
