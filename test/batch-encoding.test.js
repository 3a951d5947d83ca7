import test from 'ava'
import fc from 'fast-check'
import { BatchEncoder } from '../dist/src/format/batch.js'
import { RecordCursor } from '../dist/src/format/decode.js'

// appendBatch of plain Buffers goes through BatchEncoder.addValues, which writes short varints
// inline; every other append goes through addValue. The two must produce the same bytes.

const sizes = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 130 }) },
  { weight: 2, arbitrary: fc.integer({ min: 8170, max: 8200 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1_048_560, max: 1_048_600 }) }
)
// Offset deltas around each varint width: 1 byte below 64, 2 below 8,192, 3 below 2^20, more above.
const firstDelta = fc.oneof(fc.constantFrom(0, 60, 8185, 1_048_570, 2 ** 22), fc.integer({ min: 0, max: 2 ** 21 }))

function encode (values, base, first, firstTimestamp, timestamp, batched) {
  const enc = new BatchEncoder(1024)
  enc.beginBatch(base, firstTimestamp)
  if (batched) enc.addValues(values, first, timestamp)
  else for (let i = 0; i < values.length; i++) enc.addValue(values[i], first + i, timestamp)
  const { start, end } = enc.endBatch()
  return Buffer.from(enc.buf.subarray(start, end))
}

test('addValues writes exactly the bytes addValue does, and they decode to the values', (t) => {
  fc.assert(fc.property(
    fc.array(sizes, { minLength: 0, maxLength: 12 }),
    firstDelta,
    fc.integer({ min: 0, max: 2 ** 40 }),
    fc.boolean(),
    (lengths, delta, base, sameTimestamp) => {
      const values = lengths.map((n, i) => Buffer.alloc(n, i + 1))
      const ts0 = 1_700_000_000_000
      const ts = sameTimestamp ? ts0 : ts0 + 5
      const one = encode(values, base, base + delta, ts0, ts, false)
      const many = encode(values, base, base + delta, ts0, ts, true)
      if (!one.equals(many)) return false
      const cur = RecordCursor.inBatch(many, 0, many.length)
      for (let i = 0; i < values.length; i++) {
        const rec = cur.next(0)
        if (rec.offset !== base + delta + i || rec.timestamp !== ts || rec.key !== null || !rec.value.equals(values[i]) || rec.headers.length !== 0) return false
      }
      return cur.done
    }
  ), { numRuns: 300 })
  t.pass()
})

test('addValues continues a batch that addValue started, and the reverse', (t) => {
  const enc = new BatchEncoder(64)
  const ref = new BatchEncoder(64)
  const values = Array.from({ length: 9000 }, (_, i) => Buffer.alloc(i % 70, i))
  enc.beginBatch(10, 5); ref.beginBatch(10, 5)
  enc.addValue(values[0], 10, 5)
  enc.addValues(values.slice(1, 8999), 11, 5)
  enc.addValue(values[8999], 9009, 5)
  for (let i = 0; i < values.length; i++) ref.addValue(values[i], 10 + i, 5)
  t.is(enc.recordCount, 9000)
  const a = enc.endBatch()
  const b = ref.endBatch()
  t.true(enc.buf.subarray(a.start, a.end).equals(ref.buf.subarray(b.start, b.end)))
})
