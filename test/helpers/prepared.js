import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import path from 'node:path'
import { WriteAhead } from '../../dist/src/index.js'

export const SEGMENT_BYTES = 256 * 1024

/** Resolves with the next message on a writeahead diagnostics channel that passes `test`. */
export function nextMessage (name, test = () => true) {
  return new Promise((resolve) => {
    const on = (msg) => { if (test(msg)) { unsubscribe(name, on); resolve(msg) } }
    subscribe(name, on)
  })
}

/**
 * Opens a log in `dir` and appends until partition 0 writes into a segment that was zero-filled
 * ahead of time, with the one after it prepared as well: a preallocated tail to recover past.
 */
export async function writeUntilPreparedSegment (dir, options = {}) {
  const wal = await WriteAhead.open(dir, { segmentBytes: SEGMENT_BYTES, ...options })
  const batch = Array.from({ length: 50 }, (_, i) => `record ${i} `.padEnd(64, '.'))
  // Channels are process-wide: only this log's messages count.
  const mine = (m) => m.dir === path.normalize(dir) && m.partition === 0
  let prepared = nextMessage('writeahead:prepare', (m) => mine(m) && m.ok)
  await wal.appendBatch(0, batch)
  await prepared
  const rotated = nextMessage('writeahead:rotate', (m) => mine(m) && m.prepared)
  let done = false
  void rotated.then(() => { done = true })
  prepared = nextMessage('writeahead:prepare', (m) => mine(m) && m.ok)
  while (!done) await wal.appendBatch(0, batch)
  await wal.appendBatch(0, batch)
  await prepared
  return wal
}
