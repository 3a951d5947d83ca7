// Every accepted shape of a record's headers reads back as the same ordered list, and
// maxRecordBytes bounds exactly key + value + header keys + header values (src/input.ts).
import test from 'ava'
import fc from 'fast-check'
import { WriteAhead } from '../dist/src/index.js'
import { tmpDir } from './helpers/tmp.js'

const name = fc.oneof(fc.constantFrom('trace', 'hop', 'a', '', 'é'), fc.string({ maxLength: 6 }))
const bytes = fc.uint8Array({ maxLength: 40 })
// A header value as a caller may give it, with the bytes it stands for (null: no value).
const value = fc.oneof(
  bytes.map((b) => ({ input: Buffer.from(b), want: Buffer.from(b) })),
  bytes.map((b) => ({ input: new Uint8Array(b), want: Buffer.from(b) })),
  fc.string({ maxLength: 10 }).map((s) => ({ input: s, want: Buffer.from(s) })),
  fc.constant({ input: null, want: null }),
  fc.constant({ input: undefined, want: null })
)
const header = fc.record({ key: name, value })

/** The same list of headers in one of the accepted shapes; the expected ordered list. */
const headers = fc.oneof(
  fc.array(header, { maxLength: 5 }).map((hs) => ({
    input: hs.map((h) => ({ key: h.key, value: h.value.input })),
    want: hs.map((h) => ({ key: h.key, value: h.value.want }))
  })),
  fc.array(header, { maxLength: 5 }).map((hs) => ({
    input: hs.map((h) => [h.key, h.value.input]),
    want: hs.map((h) => ({ key: h.key, value: h.value.want }))
  })),
  // kafkajs's object form: one entry per distinct key, an array for duplicates; undefined is left out.
  fc.uniqueArray(fc.tuple(name, fc.array(value, { minLength: 1, maxLength: 3 }), fc.boolean()), { selector: (e) => e[0], maxLength: 4 })
    .filter((es) => es.every(([k]) => !/^\d+$/.test(k))) // integer-like keys are reordered by JS itself
    .map((es) => {
      const input = {}
      const want = []
      for (const [k, vs, asArray] of es) {
        if (asArray || vs.length > 1) {
          input[k] = vs.map((v) => v.input)
          for (const v of vs) want.push({ key: k, value: v.want })
        } else {
          input[k] = vs[0].input
          if (vs[0].input !== undefined) want.push({ key: k, value: vs[0].want })
        }
      }
      return { input, want }
    })
)
const record = fc.record({ key: fc.option(bytes, { nil: null }), value: bytes, headers })

const payloadBytes = (r) => (r.key?.length ?? 0) + r.value.length +
  r.headers.want.reduce((n, h) => n + Buffer.byteLength(h.key) + (h.value?.length ?? 0), 0)

test('headers in every accepted shape read back as the ordered list they stand for', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  await fc.assert(fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 20 }), async (recs) => {
    const start = await wal.appendBatch(0, recs.map((r) => ({ key: r.key, value: r.value, headers: r.headers.input, timestamp: 7 })))
    for (let i = 0; i < recs.length; i++) {
      const got = await wal.read(0, start + i)
      t.deepEqual(got.headers, recs[i].headers.want)
      t.deepEqual(got.value, Buffer.from(recs[i].value))
      t.deepEqual(got.key, recs[i].key === null ? null : Buffer.from(recs[i].key))
    }
  }), { numRuns: 150 })
  await wal.close()
})

test('maxRecordBytes bounds key + value + header keys and values, to the byte', async (t) => {
  const max = 256
  const wal = await WriteAhead.open(tmpDir(t), { maxRecordBytes: max })
  await fc.assert(fc.asyncProperty(record, async (r) => {
    const size = payloadBytes(r)
    fc.pre(size > 0 && size <= max)
    // Pad the value so that the record is exactly max bytes, then one byte over.
    const fit = { key: r.key, value: Buffer.concat([Buffer.from(r.value), Buffer.alloc(max - size)]), headers: r.headers.input }
    const over = { key: r.key, value: Buffer.concat([Buffer.from(r.value), Buffer.alloc(max - size + 1)]), headers: r.headers.input }
    const at = await wal.append(0, fit)
    t.is((await wal.read(0, at)).value.length, fit.value.length)
    const err = await t.throwsAsync(wal.appendBatch(0, [fit, over]))
    t.is(err.code, 'RECORD_TOO_LARGE')
    t.is(err.details.size, max + 1)
    t.is(err.details.index, 1)
  }), { numRuns: 150 })
  await wal.close()
})

test('a header that is not a key and value is refused at the boundary, naming what is wrong', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  const cases = [
    [[{ key: 1, value: 'x' }], /header keys must be strings, got number/],
    [[['k']], /entries must be \{ key, value \} or \[key, value\]/],
    [[null], /entries must be/],
    [[{ key: 'k', value: 5 }], /header k must be a Buffer, Uint8Array or string, got number/],
    [{ k: [{}] }, /header k must be a Buffer/],
    ['text', /headers must be an array or an object, got string/]
  ]
  for (const [headers, message] of cases) {
    const err = await t.throwsAsync(wal.append(0, { value: 'v', headers }))
    t.is(err.code, 'INVALID_RECORD')
    t.regex(err.message, message)
  }
  t.is(wal.offsets(0).end, 0)
  await wal.close()
})

test('binary data that is not a Uint8Array is refused, naming it and what is accepted', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  const cases = [
    [new Uint16Array([1, 2]), 'a Uint16Array'],
    [new DataView(new ArrayBuffer(4)), 'a DataView'],
    [new ArrayBuffer(4), 'an ArrayBuffer'],
    [new Float64Array(1), 'a Float64Array']
  ]
  for (const [input, name] of cases) {
    for (const attempt of [() => wal.append(0, input), () => wal.appendBatch(0, ['fine', input])]) {
      const err = await t.throwsAsync(attempt())
      t.is(err.code, 'INVALID_RECORD')
      t.true(err.message.includes(`a record must be a Buffer, Uint8Array, string or { key?, value, headers?, timestamp? }, got ${name};`), err.message)
    }
  }
  const inValue = await t.throwsAsync(wal.append(0, { value: new Uint16Array(1) }))
  t.regex(inValue.message, /value must be a Buffer, Uint8Array or string, got a Uint16Array$/)
  const inKey = await t.throwsAsync(wal.append(0, { key: new ArrayBuffer(1), value: 'v' }))
  t.regex(inKey.message, /key must be a Buffer, Uint8Array or string, got an ArrayBuffer$/)
  // A plain object without a value is still told that the value is missing.
  t.regex((await t.throwsAsync(wal.append(0, {}))).message, /value is required/)
  t.is(wal.offsets(0).end, 0)
  await wal.close()
})

test('a refused record of an appendBatch is named by its index; nothing of the batch is appended', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t), { maxRecordBytes: 16 })
  const cases = [
    [['a', 'b', 'c', 7, 'd'], 3, 'INVALID_RECORD', /got number \(record 3 of the batch\)$/],
    [['a', { value: 'v', headers: 5 }], 1, 'INVALID_RECORD', /headers must be an array or an object, got number \(record 1 of the batch\)$/],
    [['a', 'b', 'x'.repeat(17)], 2, 'RECORD_TOO_LARGE', /record of 17 bytes exceeds maxRecordBytes \(16\) \(record 2 of the batch\)$/]
  ]
  for (const [inputs, index, code, message] of cases) {
    const err = await t.throwsAsync(wal.appendBatch(0, inputs))
    t.is(err.code, code)
    t.is(err.details.index, index)
    t.regex(err.message, message)
  }
  const single = await t.throwsAsync(wal.append(0, 'x'.repeat(17)))
  t.is(single.message, 'record of 17 bytes exceeds maxRecordBytes (16)', 'a single append has no batch to place it in')
  t.is(wal.offsets(0).pending, 0)
  await wal.close()
})

test('timestamps far apart in one batch read back exactly, and those beyond ±(2^51 - 1) ms are refused', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  const edge = 2 ** 51 - 1
  // The batch stores each one's distance from the first, 2^52 - 2 here: exact in a double.
  const first = await wal.appendBatch(0, [{ value: 'a', timestamp: edge }, { value: 'b', timestamp: -edge }, { value: 'c', timestamp: 0 }])
  t.deepEqual((await wal.read(0, first)).timestamp, edge)
  t.deepEqual((await wal.read(0, first + 1)).timestamp, -edge)
  t.deepEqual((await wal.read(0, first + 2)).timestamp, 0)
  for (const ts of [2 ** 51, -(2 ** 51), Number.MAX_SAFE_INTEGER, `${Number.MIN_SAFE_INTEGER}`]) {
    const err = await t.throwsAsync(wal.appendBatch(0, [{ value: 'x', timestamp: 0 }, { value: 'y', timestamp: ts }]), { code: 'INVALID_RECORD' })
    t.regex(err.message, /timestamp must be within ±2251799813685247 ms .*\(record 1 of the batch\)$/)
  }
  t.is(wal.offsets(0).pending, 3, 'nothing of a refused batch was appended')
  await wal.close()
})
