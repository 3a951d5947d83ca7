import test from 'ava'
import fs from 'node:fs'
import { WriteAhead, WalError, nodeFileIO } from '../dist/src/index.js'
import { tmpDir, segmentFiles, partitionPath } from './helpers/tmp.js'

// Point reads go through the read cache: the first read of an index block verifies its
// checksums and maps where each record lies; later reads of a mapped block fetch just the
// record's bytes, or nothing at all while the block's bytes are still kept. These tests watch
// the reads that reach the file to tell the three apart.

const BATCHES = 6
const PER_BATCH = 200
const SMALL = 4

function input (i) {
  const value = Buffer.alloc(64 + (i % 7))
  value.writeUInt32BE(i)
  value.fill(i % 251, 4)
  return { key: `key-${i}`, value, headers: [{ key: 'n', value: Buffer.from(String(i)) }, { key: 'n', value: null }], timestamp: 1_700_000_000_000 + i * 3 }
}

function expectRecord (t, rec, i, offset = i) {
  const want = input(i)
  t.is(rec.offset, offset)
  t.is(rec.timestamp, want.timestamp)
  t.is(rec.key.toString(), want.key)
  t.deepEqual(rec.value, want.value)
  t.deepEqual(rec.headers, want.headers)
}

/** nodeFileIO, with every read of a segment file noted as [position, length]. */
function watchedIO () {
  const segmentFds = new Set()
  const reads = []
  const io = {
    ...nodeFileIO,
    open (p, mode) { const fd = nodeFileIO.open(p, mode); if (p.endsWith('.log')) segmentFds.add(fd); else segmentFds.delete(fd); return fd },
    read (fd, buf, off, len, pos) { if (segmentFds.has(fd)) reads.push([pos, len]); return nodeFileIO.read(fd, buf, off, len, pos) }
  }
  return { io, reads }
}

/**
 * BATCHES batches of PER_BATCH records (an index block each), then PER_BATCH more in batches of
 * SMALL (many batches to a block, each with its own offset and timestamp bases).
 */
async function writeLog (dir, offsetsOf = null) {
  const wal = await WriteAhead.open(dir)
  const write = (first, n) => {
    const idx = Array.from({ length: n }, (_, j) => first + j)
    return wal.appendBatch(0, idx.map(input), offsetsOf === null ? undefined : { offsets: idx.map(offsetsOf) })
  }
  for (let b = 0; b < BATCHES; b++) await write(b * PER_BATCH, PER_BATCH)
  for (let i = 0; i < PER_BATCH; i += SMALL) await write(BATCHES * PER_BATCH + i, SMALL)
  await wal.close()
}
const TOTAL = (BATCHES + 1) * PER_BATCH

/** Reads `offset`, returning the record and the segment reads it caused. */
async function readWatched (wal, reads, offset) {
  const before = reads.length
  const rec = await wal.read(0, offset)
  return { rec, reads: reads.slice(before) }
}

// Room for every block's map but for the bytes of one block only (an eighth of the budget).
const ONE_BLOCK_OF_BYTES = 200 * 1024

test('a mapped block is read whole once, then record by record once its bytes are let go, and whole again when reads walk it', async (t) => {
  const dir = tmpDir(t)
  await writeLog(dir)
  const { io, reads } = watchedIO()
  const wal = await WriteAhead.open(dir, { io, readCacheBytes: ONE_BLOCK_OF_BYTES })

  const first = await readWatched(wal, reads, 10)
  expectRecord(t, first.rec, 10)
  t.is(first.reads.length, 1, 'the first read of a block reads it once')
  const blockBytes = first.reads[0][1]
  t.true(blockBytes > PER_BATCH * 64, 'the whole block (a batch of 200 records) is read')
  t.true(blockBytes * 8 <= ONE_BLOCK_OF_BYTES, 'and its bytes fit the bytes tier')

  const kept = await readWatched(wal, reads, 150)
  expectRecord(t, kept.rec, 150)
  t.deepEqual(kept.reads, [], 'its bytes are kept: the next read touches no file')

  // Two other blocks: each is read whole, and the second pushes the first block's bytes out.
  for (const o of [250, 450]) t.is((await readWatched(wal, reads, o)).reads.length, 1)

  const lone = await readWatched(wal, reads, 42)
  expectRecord(t, lone.rec, 42)
  t.is(lone.reads.length, 1, 'a mapped block without its bytes costs one read')
  t.true(lone.reads[0][1] < 128, `of the record's bytes alone (${lone.reads[0][1]} bytes)`)

  const again = await readWatched(wal, reads, 43)
  expectRecord(t, again.rec, 43)
  t.deepEqual(again.reads.map((r) => r[1]), [blockBytes], 'a second read in a row of that block loads it whole again')
  const third = await readWatched(wal, reads, 199)
  expectRecord(t, third.rec, 199)
  t.deepEqual(third.reads, [], 'and the ones after it are served from memory')
  await wal.close()
})

test('every record reads back exactly, in random order, through each way a read is served', async (t) => {
  const dir = tmpDir(t)
  await writeLog(dir)
  const { io, reads } = watchedIO()
  const wal = await WriteAhead.open(dir, { io, readCacheBytes: ONE_BLOCK_OF_BYTES })
  const total = TOTAL
  const kinds = { whole: 0, record: 0, memory: 0 }
  let x = 12345
  let i = 0
  for (let n = 0; n < total * 3; n++) {
    x = (x * 1103515245 + 12345) % 2 ** 31
    // Runs of neighbours mixed with jumps, so all three ways are taken.
    i = n % 4 === 0 ? x % total : Math.min(total - 1, i + 1)
    const got = await readWatched(wal, reads, i)
    expectRecord(t, got.rec, i)
    if (got.reads.length === 0) kinds.memory++
    else if (got.reads[0][1] < 128) kinds.record++
    else kinds.whole++
  }
  for (const [k, n] of Object.entries(kinds)) t.true(n > 0, `some reads were served ${k === 'whole' ? 'by loading the block' : k === 'record' ? 'by reading the record alone' : 'from memory'} (${n})`)
  await wal.close()
})

test('explicit offsets with gaps: mapped reads find each record and refuse the gaps', async (t) => {
  const dir = tmpDir(t)
  const offsetOf = (i) => i * 3 + (i % 2)
  await writeLog(dir, offsetOf)
  const { io, reads } = watchedIO()
  const wal = await WriteAhead.open(dir, { io, readCacheBytes: ONE_BLOCK_OF_BYTES })
  for (let pass = 0; pass < 2; pass++) {
    for (let b = 0; b <= BATCHES; b++) {
      // The second pass reads each block's records once, out of order, after other blocks
      // pushed its bytes out: record-alone reads through the map of offsets.
      for (const j of [7, 3, 150, 0, 199]) {
        const i = b * PER_BATCH + j
        expectRecord(t, await wal.read(0, offsetOf(i)), i, offsetOf(i))
        await t.throwsAsync(wal.read(0, offsetOf(i) + 1), { instanceOf: WalError, code: 'OFFSET_OUT_OF_RANGE' })
      }
    }
  }
  t.true(reads.some((r) => r[1] < 128), 'some reads fetched a record alone')
  await wal.close()
})

/** File position of record `i`'s first byte, found by its unique value bytes. */
function positionOf (file, i) {
  const bytes = fs.readFileSync(file)
  const at = bytes.indexOf(input(i).value)
  if (at < 0) throw new Error(`record ${i} not found in ${file}`)
  return { bytes, at }
}

test('with readCacheBytes: 0 every point read checks its block: a flipped value byte is CORRUPTED each time', async (t) => {
  const dir = tmpDir(t)
  await writeLog(dir)
  const wal = await WriteAhead.open(dir, { readCacheBytes: 0 })
  expectRecord(t, await wal.read(0, 300), 300)
  const file = partitionPath(dir, 0, segmentFiles(dir)[0])
  const { at } = positionOf(file, 300)
  const fd = fs.openSync(file, 'r+')
  fs.writeSync(fd, Buffer.from([0xee]), 0, 1, at + 10)
  fs.closeSync(fd)
  for (let k = 0; k < 2; k++) {
    const err = await t.throwsAsync(wal.read(0, 300), { instanceOf: WalError, code: 'CORRUPTED' })
    t.regex(err.message, /checksum/)
  }
  await t.throwsAsync(wal.read(0, 301), { code: 'CORRUPTED' }, 'the whole batch is refused, not only the damaged record')
  expectRecord(t, await wal.read(0, 500), 500, 500)
  await wal.close()
})

test('a mapped record whose bytes no longer parse is CORRUPTED, with its position', async (t) => {
  const dir = tmpDir(t)
  await writeLog(dir)
  const wal = await WriteAhead.open(dir, { readCacheBytes: ONE_BLOCK_OF_BYTES })
  expectRecord(t, await wal.read(0, 20), 20)
  for (const o of [250, 450]) await wal.read(0, o) // push block 0's bytes out; its map stays
  const file = partitionPath(dir, 0, segmentFiles(dir)[0])
  // The key's length (a zigzag varint) is the byte just before it: claim a key longer than the
  // record. 'key-20' is followed by its value's length, 70 (zigzag 140, varint 0x8c 0x01).
  const keyAt = fs.readFileSync(file).indexOf(Buffer.concat([Buffer.from('key-20'), Buffer.from([0x8c, 0x01])]))
  t.true(keyAt > 0)
  const fd = fs.openSync(file, 'r+')
  fs.writeSync(fd, Buffer.from([0x7e]), 0, 1, keyAt - 1)
  fs.closeSync(fd)
  const err = await t.throwsAsync(wal.read(0, 20), { instanceOf: WalError, code: 'CORRUPTED' })
  t.is(err.details.offset, 20)
  t.is(err.details.segment, segmentFiles(dir)[0])
  t.true(err.details.position < keyAt && err.details.position > keyAt - 16, 'the position is the record\'s')
  await wal.close()
})

test('a record returned from cached bytes is the caller\'s own: writing into it changes no later read', async (t) => {
  const dir = tmpDir(t)
  await writeLog(dir)
  const wal = await WriteAhead.open(dir, { readCacheBytes: ONE_BLOCK_OF_BYTES })
  const first = await wal.read(0, 5) // loads the block; its bytes stay cached
  first.value.fill(0xff)
  first.key.fill(0x21)
  first.headers[0].value.fill(0x21)
  expectRecord(t, await wal.read(0, 5), 5)
  const second = await wal.read(0, 6) // served from the cached bytes
  second.value.fill(0xff)
  expectRecord(t, await wal.read(0, 6), 6)
  await wal.close()
})
