/**
 * Header keys come from a small vocabulary ("trace", "content-type", ...) repeated on every record.
 * Decoding each again made a view and a string per header, and a reader holding records kept them
 * all alive; a small direct-mapped cache of short keys hands back the same string instead. The
 * same string each time also keeps property lookups by that key fast (the Kafka mirror's decoder
 * patch folds headers into kafkajs's object form with it).
 */
const KEY_SLOTS = 256
const KEY_MAX_BYTES = 48
const keyBytes: Array<Buffer | undefined> = new Array(KEY_SLOTS)
const keyText: string[] = new Array(KEY_SLOTS)

/** The UTF-8 header key at buf[at, at + len): the same string each time for a short key. */
export function headerKey (buf: Buffer, at: number, len: number): string {
  if (len > KEY_MAX_BYTES) return buf.toString('utf8', at, at + len)
  let h = len
  for (let i = 0; i < len; i++) h = (Math.imul(h, 31) + buf[at + i]) | 0
  const slot = (h ^ (h >>> 8)) & (KEY_SLOTS - 1)
  const k = keyBytes[slot]
  if (k !== undefined && k.length === len) {
    let i = 0
    while (i < len && k[i] === buf[at + i]) i++
    if (i === len) return keyText[slot]
  }
  const text = buf.toString('utf8', at, at + len)
  keyBytes[slot] = Buffer.from(buf.subarray(at, at + len))
  keyText[slot] = text
  return text
}
