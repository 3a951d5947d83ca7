// LevelDB as a log, through classic-level: put and batch with { sync: true } (LevelDB appends to its
// log file and fdatasyncs before acknowledging, so an acknowledged write survives power loss). The
// key is the offset as 8 big-endian bytes, so keys sort in append order.
import { RECORD, WARM_APPENDS, payload, payloads, pkgVersion, u64Key } from '../lib/common.js'

let ClassicLevel = null
let loadError = null
try {
  ClassicLevel = (await import('classic-level')).ClassicLevel
} catch (err) {
  loadError = err
}

const SYNC = { sync: true }
const ENC = { keyEncoding: 'buffer', valueEncoding: 'buffer' }

async function lastKey (db) {
  const it = db.keys({ reverse: true, limit: 1 })
  const ks = await it.all()
  return ks.length === 0 ? -1 : Number(ks[0].readBigUInt64BE(0))
}

export default {
  key: 'level',
  label: 'classic-level',
  short: 'level',
  durable: true,
  available: ClassicLevel !== null,
  unavailable: loadError === null ? null : `classic-level could not be loaded: ${String(loadError.message ?? loadError).split('\n')[0]}`,
  version: pkgVersion('classic-level'),
  note: 'LevelDB, put and batch with { sync: true }; default options; point reads with getSync',

  async open (dir, { warm = false } = {}) {
    const db = new ClassicLevel(dir, ENC)
    await db.open()
    let next = (await lastKey(db)) + 1
    if (warm) for (let i = 0; i < WARM_APPENDS; i++) await db.put(u64Key(next++), payload(i), SYNC)
    return {
      db,
      append: (b) => db.put(u64Key(next++), b, SYNC),
      appendBatch (bs) {
        const batch = db.batch()
        for (const b of bs) batch.put(u64Key(next++), b)
        return batch.write(SYNC)
      },
      read (i) {
        const v = db.getSync(u64Key(i))
        if (v === undefined) throw new Error(`level: no key ${i}`)
        return v
      },
      async replay () {
        let n = 0; let bytes = 0
        for await (const [, v] of db.iterator()) { n++; bytes += v.length }
        return { n, bytes }
      },
      async replayBatched () {
        let n = 0; let bytes = 0
        const it = db.iterator()
        try {
          for (;;) {
            const entries = await it.nextv(1000)
            if (entries.length === 0) break
            for (const e of entries) bytes += e[1].length
            n += entries.length
          }
        } finally { await it.close() }
        return { n, bytes }
      },
      close: () => db.close()
    }
  },

  async crashChild (dir, bytes) {
    const db = new ClassicLevel(dir, ENC)
    await db.open()
    let next = (await lastKey(db)) + 1
    const N = 16384
    let written = 0
    let told = false
    for (let k = 0; ; k += N) {
      const batch = db.batch()
      for (const b of payloads(k, N)) batch.put(u64Key(next++), b)
      await batch.write(SYNC)
      written += N * RECORD
      if (!told && written >= bytes) { told = true; process.stdout.write(`ready ${next}\n`) }
    }
  },

  async recover (dir) {
    const db = new ClassicLevel(dir, ENC)
    await db.open()
    const end = (await lastKey(db)) + 1
    return { end, close: () => db.close() }
  }
}
