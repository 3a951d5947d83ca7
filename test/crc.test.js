import test from 'ava'
import fc from 'fast-check'
import { crc32c as native } from '@node-rs/crc32'
import { crc32c } from '../dist/src/format/crc.js'

// Short ranges are checksummed in JS, long ones natively: both must give the same CRC32C.

test('crc32c matches the native CRC32C for every range length, offset and initial value', (t) => {
  fc.assert(fc.property(
    fc.uint8Array({ minLength: 0, maxLength: 700 }),
    fc.nat(), fc.nat(), fc.integer({ min: 0, max: 0xffffffff }),
    (bytes, a, b, initial) => {
      const buf = Buffer.from(bytes)
      const start = buf.length === 0 ? 0 : a % (buf.length + 1)
      const end = start + (buf.length - start === 0 ? 0 : b % (buf.length - start + 1))
      return crc32c(buf, start, end, initial) === native(buf.subarray(start, end), initial) >>> 0
    }
  ), { numRuns: 2000 })
  t.is(crc32c(Buffer.from('123456789')), 0xe3069283, 'the CRC32C check value')
})
