// writeahead itself, behind the same small interface as the peers (see peers/index.js).
import fs from 'node:fs'
import { WriteAhead, prepareChannel } from '../../dist/src/index.js'
import { RECORD, WARM_APPENDS, payload, payloads } from '../lib/common.js'

/** Successive writeahead:prepare events of partition 0 of the log in `dir`; a failed one throws. */
function preparedIn (dir) {
  const seen = []
  let wake = null
  const on = (m) => { if (m.dir === dir && m.partition === 0) { seen.push(m); wake?.() } }
  prepareChannel.subscribe(on)
  return {
    async next () {
      if (seen.length === 0) {
        let timer
        await new Promise((resolve) => { wake = resolve; timer = setTimeout(resolve, 30_000) })
        clearTimeout(timer)
        wake = null
      }
      const m = seen.shift()
      if (m === undefined) throw new Error('writeahead: no segment was prepared within 30 s')
      if (!m.ok) throw new Error('writeahead: preparing the next segment failed')
    },
    stop: () => prepareChannel.unsubscribe(on)
  }
}

export default {
  key: 'writeahead',
  label: 'writeahead',
  short: 'writeahead',
  durable: true,
  version: JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version,
  note: "sync: 'always' (default): one write + fdatasync per group commit",

  /**
   * Opens a log. With `warm`, the steady state: WARM_APPENDS appends, then wait (on the
   * writeahead:prepare channel) until the zero-filled next segment is ready, append once so the
   * log moves into it, and wait until the one after it is ready too. No background zero-fill is
   * then left to compete with the timed run.
   */
  async open (dir, { warm = false } = {}) {
    const wal = await WriteAhead.open(dir, { partitions: 1 })
    if (warm) {
      const prepared = preparedIn(dir)
      try {
        for (let i = 0; i < WARM_APPENDS; i++) await wal.append(0, payload(i))
        await prepared.next()
        await wal.append(0, payload(0))
        await prepared.next()
      } finally { prepared.stop() }
    }
    const first = wal.offsets(0).start
    return {
      wal,
      append: (b) => wal.append(0, b),
      appendBatch: (bs) => wal.appendBatch(0, bs),
      read: (i) => wal.read(0, first + i).then((r) => r.value),
      async replay () {
        let n = 0; let bytes = 0
        for await (const rec of wal.iterate(0)) { n++; bytes += rec.value.length }
        return { n, bytes }
      },
      async replayBatched () {
        let n = 0; let bytes = 0
        for await (const recs of wal.iterateBatches(0)) { n += recs.length; for (const rec of recs) bytes += rec.value.length }
        return { n, bytes }
      },
      async replayStream () {
        let n = 0; let bytes = 0
        for await (const rec of wal.readable(0, { from: 'earliest' })) { n++; bytes += rec.value.length }
        return { n, bytes }
      },
      close: () => wal.close()
    }
  },

  /** In a child process: append 16,384-record batches; say "ready <end>" after `bytes` more payload bytes; go on until killed. */
  async crashChild (dir, bytes) {
    const wal = await WriteAhead.open(dir, { partitions: 1 })
    const N = 16384
    let written = 0
    let told = false
    for (let k = 0; ; k += N) {
      await wal.appendBatch(0, payloads(k, N))
      written += N * RECORD
      if (!told && written >= bytes) { told = true; process.stdout.write(`ready ${wal.offsets(0).end}\n`) }
    }
  },

  /** Opens after a crash (recovery included) and finds the end: -> { end }. */
  async recover (dir) {
    const wal = await WriteAhead.open(dir, { partitions: 1 })
    const { end } = wal.offsets(0)
    return { end, close: () => wal.close() }
  }
}
