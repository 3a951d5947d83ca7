// CRC32C (Castagnoli), Kafka's batch checksum. The native implementation reaches ~6 GB/s here,
// which matters because every batch is checksummed on write and on every read.
import { crc32c as nativeCrc32c } from '@node-rs/crc32'

/** Below this many bytes the table loop below is used: no subarray to allocate, no native call. */
const SHORT = 64

const TABLE = (() => {
  const t = new Int32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    t[n] = c
  }
  return t
})()

export function crc32c (buf: Uint8Array, start = 0, end = buf.length, initial = 0): number {
  // Every commit checksums a few tiny ranges (the head-file slots, the segment chain); the
  // subarray the native call needs for them was most of a commit's garbage.
  if (end - start < SHORT) {
    let c = ~initial
    for (let i = start; i < end; i++) c = TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8)
    return ~c >>> 0
  }
  const view = start === 0 && end === buf.length ? buf : buf.subarray(start, end)
  return nativeCrc32c(view, initial) >>> 0
}
