// A null value (a Kafka tombstone) is stored as one, not as an empty value, and reads back as null
// through every way a record is read, after reopening too (src/format/batch.ts, decode.ts).
import test from 'ava'
import { createRequire } from 'node:module'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { lastValueFrom, toArray } from 'rxjs'
import { WriteAhead } from '../dist/src/index.js'
import { BatchEncoder } from '../dist/src/format/batch.js'
import { fromPartition } from 'writeahead/rx'
import { tmpDir } from './helpers/tmp.js'
import { run } from './fixtures/cli-run.js'

const require = createRequire(import.meta.url)

// Tombstones between values, an empty value beside them (which must stay empty), with and
// without key and headers.
const records = [
  { key: 'a', value: 'one', timestamp: 1000 },
  { key: 'a', value: null, timestamp: 1001 },
  { key: 'b', value: '', timestamp: 1002 },
  { value: null, headers: [['why', 'deleted'], ['who', null]], timestamp: 1003 },
  { key: 'c', value: Buffer.from('three'), timestamp: 1004 }
]
const want = records.map((r) => ({
  key: r.key === undefined ? null : Buffer.from(r.key),
  value: r.value === null ? null : Buffer.from(r.value),
  headers: (r.headers ?? []).map(([key, value]) => ({ key, value: value === null ? null : Buffer.from(value) })),
  timestamp: r.timestamp
}))
const shape = (rec) => ({ key: rec.key, value: rec.value, headers: rec.headers, timestamp: rec.timestamp })

async function everyRead (t, wal, p, first) {
  const n = want.length
  for (let i = 0; i < n; i++) t.deepEqual(shape(await wal.read(p, first + i)), want[i], `read ${i}`)
  const iterated = []
  for await (const rec of wal.iterate(p, { from: first })) iterated.push(shape(rec))
  t.deepEqual(iterated, want, 'iterate')
  const batched = []
  for await (const batch of wal.iterateBatches(p, { from: first })) for (const rec of batch) batched.push(shape(rec))
  t.deepEqual(batched, want, 'iterateBatches')
  const streamed = []
  for await (const rec of wal.readable(p, { from: first, to: first + n })) streamed.push(shape(rec))
  t.deepEqual(streamed, want, 'readable')
  const observed = await lastValueFrom(fromPartition(wal, p, { from: first }).pipe(toArray()))
  t.deepEqual(observed.map(shape), want, 'rx')
}

test('tombstones read back as null through every read path, after reopening too', async (t) => {
  const dir = tmpDir(t)
  for (const readCacheBytes of [undefined, 0]) {
    const wal = await WriteAhead.open(dir, { partitions: 3, readCacheBytes })
    if (readCacheBytes === undefined) {
      // One record per commit, one batch of all, and a stream.
      for (const r of records) await wal.append(0, r)
      await wal.appendBatch(1, records)
      await pipeline(Readable.from(records), wal.writable(2))
    }
    for (let p = 0; p < 3; p++) await everyRead(t, wal, p, 0)
    await wal.close()
  }
  const ro = await WriteAhead.open(dir, { readOnly: true })
  await everyRead(t, ro, 1, 0)
  await ro.close()
})

test('a missing value is refused at the boundary; only an explicit null is a tombstone', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  for (const input of [{ key: 'k' }, { key: 'k', value: undefined }]) {
    const err = await t.throwsAsync(wal.append(0, input), { code: 'INVALID_RECORD' })
    t.regex(err.message, /value is required \(null for a tombstone\)/)
  }
  // A bare null is no record at all, not a tombstone.
  await t.throwsAsync(wal.append(0, null), { code: 'INVALID_RECORD' })
  await t.throwsAsync(wal.appendBatch(0, [{ value: 'ok' }, { key: 'k' }]), { code: 'INVALID_RECORD' })
  t.is(wal.offsets(0).end, 0)
  await wal.close()
})

test('maxRecordBytes counts a tombstone\'s key and headers, its value as nothing', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t), { maxRecordBytes: 64 })
  const at = await wal.append(0, { key: Buffer.alloc(60), value: null, headers: [['ab', 'cd']] })
  t.is((await wal.read(0, at)).value, null)
  const err = await t.throwsAsync(wal.append(0, { key: Buffer.alloc(61), value: null, headers: [['ab', 'cd']] }), { code: 'RECORD_TOO_LARGE' })
  t.is(err.details.size, 65)
  await wal.close()
})

test('a record is stored in Kafka\'s v2 record format: a tombstone as Kafka writes one', (t) => {
  const encodeKafka = require('kafkajs/src/protocol/recordBatch/record/v0')
  const cases = [
    { key: Buffer.from('k'), value: null },
    { key: null, value: null },
    { key: Buffer.from('k'), value: Buffer.alloc(0) },
    { key: null, value: Buffer.from('v'.repeat(200)) }
  ]
  for (const c of cases) {
    const enc = new BatchEncoder(64)
    enc.beginBatch(100, 5000)
    enc.addRecord({ key: c.key, value: c.value, headerKeys: [], headerValues: [], timestamp: 5003, size: 0 }, 102)
    const { start, end } = enc.endBatch()
    const ours = Buffer.from(enc.buf.subarray(start + 44, end))
    const theirs = encodeKafka({ offsetDelta: 2, timestampDelta: 3, key: c.key, value: c.value, headers: {} }).buffer
    t.deepEqual(ours, theirs, `key ${c.key === null ? 'null' : 'set'}, value ${c.value === null ? 'null' : c.value.length}`)
  }
})

test('the CLI appends "value": null as a tombstone; tail --json prints it as null, plain tail as an empty line', async (t) => {
  const dir = tmpDir(t)
  const input = ['{"key":"k","value":"v"}', '{"key":"k","value":null}', '{"key":"k","value":""}'].join('\n') + '\n'
  const appended = await run(['append', dir, '--json'], { input })
  t.is(appended.code, 0, appended.stderr)
  const missing = await run(['append', dir, '--json'], { input: '{"key":"k"}\n' })
  t.not(missing.code, 0)
  t.regex(missing.stderr, /"value" is missing \(null for a tombstone\)/)
  const json = await run(['tail', dir, '--json'])
  t.is(json.code, 0, json.stderr)
  t.deepEqual(json.stdout.trim().split('\n').map((l) => JSON.parse(l).value), ['v', null, ''])
  const plain = await run(['tail', dir])
  t.is(plain.stdout, 'v\n\n\n')
  const verified = await run(['verify', dir])
  t.is(verified.code, 0, verified.stdout + verified.stderr)
})
