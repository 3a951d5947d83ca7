// writeahead itself, behind the same small interface as the peers (see peers/index.js).
import fs from 'node:fs'
import path from 'node:path'
import { WriteAhead } from '../../dist/src/index.js'
import { RECORD, now, payload, payloads, sleep } from '../lib/common.js'

function segmentCount (dir) {
  try { return fs.readdirSync(path.join(dir, 'partition-0')).filter((n) => /^\d{20}\.log$/.test(n)).length } catch { return 0 }
}

export default {
  key: 'writeahead',
  label: 'writeahead',
  short: 'writeahead',
  durable: true,
  version: JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version,
  note: "sync: 'always' (default): one write + fdatasync per group commit",

  /**
   * Opens a log. With `warm`, a few hundred appends, then appends every 20 ms until the engine has
   * switched to its zero-filled (prepared) segment, then a short pause: the steady state.
   */
  async open (dir, { warm = false } = {}) {
    const wal = await WriteAhead.open(dir, { partitions: 1 })
    if (warm) {
      for (let i = 0; i < 300; i++) await wal.append(0, payload(i))
      const deadline = now() + 10_000
      while (segmentCount(dir) < 2 && now() < deadline) { await sleep(20); await wal.append(0, payload(0)) }
      if (segmentCount(dir) < 2) process.stderr.write('  warning: the WAL did not switch to a prepared segment during warm-up\n')
      await sleep(200)
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
