import test from 'ava'
import fs from 'node:fs'
import { WriteAhead, WalError } from '../dist/src/index.js'
import { crc32c } from '../dist/src/format/crc.js'
import { tmpDir, segmentFiles, partitionPath } from './helpers/tmp.js'

// One damaged batch must cost only itself (and what follows it up to the next sparse index
// entry, which cannot be found without it): point reads and iterators serve the intact batches
// before it, fail on it with CORRUPTED naming where it starts, and never serve a record of it.

const N = 200
const DAMAGED = 100
const value = (i) => `record-${i}`

/** N records appended one by one: a batch each. */
async function writeLog (dir, opts) {
  const wal = await WriteAhead.open(dir, opts)
  for (let i = 0; i < N; i++) await wal.append(0, value(i))
  await wal.close()
}

/** The segment file holding record `i`, its bytes, and where that record's batch starts. */
function locate (dir, i) {
  // The value ends the record, then a zero header count: 'record-10' does not match 'record-100'.
  const needle = Buffer.concat([Buffer.from(value(i)), Buffer.from([0])])
  for (const name of segmentFiles(dir)) {
    const file = partitionPath(dir, 0, name)
    const buf = fs.readFileSync(file)
    const at = buf.indexOf(needle)
    if (at < 0) continue
    let batch = 64
    while (batch + buf.readUInt32BE(batch) <= at) batch += buf.readUInt32BE(batch)
    return { name, file, buf, at, batch }
  }
  throw new Error(`record ${i} not found`)
}

/** Records of `iterable` (flattening arrays) until it ends or throws. */
async function drain (iterable) {
  const got = []
  try {
    for await (const r of iterable) for (const rec of [r].flat()) got.push(rec.offset)
  } catch (err) {
    return { got, err }
  }
  return { got, err: null }
}

function isDamage (t, err, where, msg) {
  t.true(err instanceof WalError && err.code === 'CORRUPTED', `${msg}: ${err?.code} ${err?.message}`)
  t.is(err?.details?.segment, where.name, msg)
  t.is(err?.details?.position, where.batch, `${msg}: names the damaged batch`)
}

/**
 * Checks every way to read around the batch damaged at `where`: records before it are served,
 * it and the rest of its index block are CORRUPTED, and the next block reads again.
 */
async function checkReads (t, dir, opts, where, label) {
  const wal = await WriteAhead.open(dir, opts)
  t.teardown(() => wal.close())
  // Point reads, in a random order so the block is first mapped from either side of the damage.
  const order = Array.from({ length: N }, (_, i) => i).sort(() => Math.random() - 0.5)
  const failed = []
  for (const i of order) {
    try {
      const rec = await wal.read(0, i)
      t.is(rec.offset, i)
      t.is(rec.value.toString(), value(i), `${label}: read ${i}`)
    } catch (err) {
      isDamage(t, err, where, `${label}: read ${i}`)
      failed.push(i)
    }
  }
  failed.sort((a, b) => a - b)
  // The damaged batch and the rest of its block, no more: the next block's start is indexed.
  t.true(failed.length > 0 && failed[0] === DAMAGED, `${label}: failed ${failed[0]}..${failed.at(-1)}`)
  t.deepEqual(failed, Array.from({ length: failed.length }, (_, j) => DAMAGED + j), `${label}: one contiguous run`)
  const next = DAMAGED + failed.length
  t.true(next < N, `${label}: the next index block reads again`)
  // No more than one block's worth: an index that ended at the damage would fail the segment's rest.
  if (opts.indexIntervalBytes === 1024) t.true(failed.length <= Math.ceil(1024 / 60), `${label}: ${failed.length} records failed, more than a block of 1 KiB holds`)

  const range = (a, b) => Array.from({ length: b - a }, (_, j) => a + j)
  for (const [name, it] of [
    ['iterate from 98', () => wal.iterate(0, { from: 98 })],
    ['iterate from 0', () => wal.iterate(0)],
    ['iterateBatches from 0', () => wal.iterateBatches(0)]
  ]) {
    const { got, err } = await drain(it())
    const from = name.endsWith('98') ? 98 : 0
    t.deepEqual(got, range(from, DAMAGED), `${label}, ${name}: every record before the damaged batch`)
    isDamage(t, err, where, `${label}, ${name}`)
  }
  const after = await drain(wal.iterate(0, { from: next }))
  t.is(after.err, null, `${label}: iterate from the next block`)
  t.deepEqual(after.got, range(next, N), `${label}: iterate from the next block`)
}

const cases = [
  ['open segment, default options', {}],
  ['sealed segment with index files', { segmentBytes: 4096, indexIntervalBytes: 1024, preallocate: false }],
  ['no read cache', { readCacheBytes: 0, indexIntervalBytes: 1024, preallocate: false }],
  // The index is rebuilt by a walk of the segment, which meets the damage.
  ['sealed segment whose index files are lost', { segmentBytes: 4096, indexIntervalBytes: 1024, preallocate: false }]
]

const indexFiles = (where) => ['.index', '.timeindex'].map((ext) => where.file.slice(0, -4) + ext)

for (const [label, opts] of cases) {
  test(`a flipped payload byte costs only its batch and the rest of its index block (${label})`, async (t) => {
    const dir = tmpDir(t)
    await writeLog(dir, opts)
    const where = locate(dir, DAMAGED)
    if (label.startsWith('sealed')) t.not(where.name, segmentFiles(dir).at(-1), 'the damage is in a sealed segment')
    where.buf[where.at + 3] ^= 0xff
    fs.writeFileSync(where.file, where.buf)
    if (label.includes('lost')) for (const f of indexFiles(where)) fs.rmSync(f)
    await checkReads(t, dir, opts, where, label)
  })
}

test('an index rebuilt around a damaged batch header is used, never saved as the segment\'s index', async (t) => {
  const opts = { segmentBytes: 4096, indexIntervalBytes: 1024, preallocate: false }
  const dir = tmpDir(t)
  await writeLog(dir, opts)
  const where = locate(dir, DAMAGED)
  t.not(where.name, segmentFiles(dir).at(-1))
  const before = Buffer.from(where.buf)
  where.buf[where.batch + 8] ^= 0xff // the magic byte: the walk cannot go past it
  fs.writeFileSync(where.file, where.buf)
  for (const f of indexFiles(where)) fs.rmSync(f)
  const wal = await WriteAhead.open(dir, opts)
  t.is((await wal.read(0, DAMAGED - 1)).value.toString(), value(DAMAGED - 1))
  isDamage(t, await t.throwsAsync(wal.read(0, DAMAGED)), where, 'the damaged batch')
  await wal.close()
  t.deepEqual(indexFiles(where).filter((f) => fs.existsSync(f)), [], 'no index saved for the damaged segment')
  // The bytes put back (from a backup, say): the segment is indexed whole again, and saved.
  fs.writeFileSync(where.file, before)
  const again = await WriteAhead.open(dir, opts)
  for (let i = DAMAGED - 1; i < N; i++) t.is((await again.read(0, i)).value.toString(), value(i))
  await again.close()
  t.deepEqual(indexFiles(where).filter((f) => fs.existsSync(f)), indexFiles(where))
})

test('a damaged batch header in a sealed segment costs only its batch and the rest of its index block', async (t) => {
  // Open reads only a sealed segment's seal, so the damage is first met by a read.
  const opts = { segmentBytes: 4096, indexIntervalBytes: 1024, preallocate: false }
  const dir = tmpDir(t)
  await writeLog(dir, opts)
  const where = locate(dir, DAMAGED)
  t.not(where.name, segmentFiles(dir).at(-1))
  where.buf[where.batch + 8] ^= 0xff // the magic byte
  fs.writeFileSync(where.file, where.buf)
  await checkReads(t, dir, opts, where, 'bad header')
})

test('a batch whose checksum holds but whose records do not parse costs only itself and the rest of its block', async (t) => {
  const opts = { segmentBytes: 4096, indexIntervalBytes: 1024, preallocate: false }
  const dir = tmpDir(t)
  await writeLog(dir, opts)
  const where = locate(dir, DAMAGED)
  const { buf, batch } = where
  // The record's length (a zigzag varint, one byte here) now runs past the batch; the checksum
  // is made to match, as a writer bug would leave it.
  buf[batch + 44] += 40
  buf.writeUInt32BE(crc32c(buf, batch + 8, batch + buf.readUInt32BE(batch)) >>> 0, batch + 4)
  fs.writeFileSync(where.file, buf)
  await checkReads(t, dir, opts, where, 'malformed')
})

test('the read cache never takes the map of a damaged block for the whole block', async (t) => {
  const dir = tmpDir(t)
  const opts = { indexIntervalBytes: 1024, preallocate: false }
  await writeLog(dir, opts)
  const where = locate(dir, DAMAGED)
  const before = Buffer.from(where.buf)
  where.buf[where.at + 3] ^= 0xff
  fs.writeFileSync(where.file, where.buf)
  const wal = await WriteAhead.open(dir, opts)
  t.teardown(() => wal.close())
  // Mapped from below the damage first, then read past it: damage, not a gap.
  t.is((await wal.read(0, DAMAGED - 1)).value.toString(), value(DAMAGED - 1))
  isDamage(t, await t.throwsAsync(wal.read(0, DAMAGED)), where, 'after a read below it')
  isDamage(t, await t.throwsAsync(wal.read(0, DAMAGED + 1)), where, 'the next record')
  t.is((await wal.read(0, DAMAGED - 1)).value.toString(), value(DAMAGED - 1), 'and again below it')
  // Every read into a damaged block verifies it afresh: with the bytes put back, it all reads.
  fs.writeFileSync(where.file, before)
  for (const i of [DAMAGED - 1, DAMAGED, DAMAGED + 1]) t.is((await wal.read(0, i)).value.toString(), value(i))
})
