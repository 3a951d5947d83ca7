// The decoder hands back one string per distinct short header key (src/format/decode.ts): keys
// must still come back exactly as written, whatever the mix of keys, collisions and lengths.
import test from 'ava'
import fc from 'fast-check'
import { WriteAhead } from '../dist/src/index.js'
import { tmpDir } from './helpers/tmp.js'

const key = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('trace', 'hop', 'content-type', 'a', '', 'é', '日本', 'ab', 'ba') },
  { weight: 3, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  // Around the cache's 48-byte limit and past it.
  { weight: 1, arbitrary: fc.string({ minLength: 45, maxLength: 60 }) }
)

test('header keys read back exactly as written, across many keys, collisions and lengths', async (t) => {
  const wal = await WriteAhead.open(tmpDir(t))
  await fc.assert(fc.asyncProperty(fc.array(fc.array(key, { maxLength: 4 }), { minLength: 1, maxLength: 40 }), async (keysPerRecord) => {
    const start = wal.offsets(0).end
    await wal.appendBatch(0, keysPerRecord.map((ks) => ({ value: 'v', headers: ks.map((k) => ({ key: k, value: k })) })))
    let i = 0
    for await (const rec of wal.iterate(0, { from: start })) {
      const want = keysPerRecord[i++]
      if (rec.headers.length !== want.length) return false
      for (let j = 0; j < want.length; j++) {
        // The value carries the key's UTF-8 bytes as written: the decoded key must equal them.
        if (rec.headers[j].key !== want[j] || rec.headers[j].key !== rec.headers[j].value.toString()) return false
      }
    }
    return i === keysPerRecord.length
  }), { numRuns: 300 })
  // More distinct keys than the cache has slots, read back twice (the second time through evicted slots).
  const many = Array.from({ length: 2000 }, (_, i) => `k${i}`)
  const from = wal.offsets(0).end
  await wal.appendBatch(0, many.map((k) => ({ value: 'v', headers: [{ key: k, value: null }, { key: 'trace', value: null }] })))
  for (let pass = 0; pass < 2; pass++) {
    let i = 0
    for await (const rec of wal.iterate(0, { from })) {
      t.is(rec.headers[0].key, many[i], `pass ${pass}, record ${i}`)
      t.is(rec.headers[1].key, 'trace')
      i++
    }
    t.is(i, many.length)
  }
  await wal.close()
})
