// SQLite as a log, through better-sqlite3: WAL mode, synchronous=FULL (the WAL is synced at every
// commit, so an acknowledged insert survives power loss), one transaction per commit. The row id is
// the offset. better-sqlite3 is synchronous: concurrent writers in one process run one after
// another, each in its own transaction (see appendQueued).
import path from 'node:path'
import { RECORD, WARM_APPENDS, payload, payloads, pkgVersion } from '../lib/common.js'

let Database = null
let loadError = null
try {
  Database = (await import('better-sqlite3')).default
  new Database(':memory:').close()
} catch (err) {
  Database = null
  loadError = err
}

function openDb (dir) {
  const db = new Database(path.join(dir, 'log.db'))
  const mode = db.pragma('journal_mode = WAL', { simple: true })
  db.pragma('synchronous = FULL')
  const sync = db.pragma('synchronous', { simple: true })
  if (mode !== 'wal' || sync !== 2) throw new Error(`better-sqlite3: journal_mode=${mode}, synchronous=${sync}; expected wal, 2 (FULL)`)
  db.exec('CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, v BLOB NOT NULL)')
  return db
}

export default {
  key: 'sqlite',
  label: 'better-sqlite3',
  short: 'sqlite',
  durable: true,
  available: Database !== null,
  unavailable: loadError === null ? null : `better-sqlite3 could not be loaded: ${String(loadError.message ?? loadError).split('\n')[0]}`,
  version: Database === null ? null : `${pkgVersion('better-sqlite3')} (SQLite ${new Database(':memory:').prepare('select sqlite_version()').pluck().get()})`,
  note: 'WAL mode, synchronous=FULL, one transaction per commit; synchronous API, so concurrent writers serialize',

  async open (dir, { warm = false } = {}) {
    const db = openDb(dir)
    const ins = db.prepare('INSERT INTO log (v) VALUES (?)')
    const sel = db.prepare('SELECT v FROM log WHERE id = ?').pluck()
    const many = db.transaction((bs) => { for (const b of bs) ins.run(b) })
    if (warm) for (let i = 0; i < WARM_APPENDS; i++) ins.run(payload(i))
    const page = db.prepare('SELECT id, v FROM log WHERE id > ? ORDER BY id LIMIT 16384').raw()
    return {
      db,
      append (b) { ins.run(b); return Promise.resolve() },
      /**
       * For concurrent writers: each call runs its own transaction on a later turn, the way a server
       * handling concurrent requests would, so a writer's latency includes waiting for the others.
       */
      appendQueued: (b) => new Promise((resolve, reject) => setImmediate(() => { try { ins.run(b); resolve() } catch (err) { reject(err) } })),
      appendBatch (bs) { many(bs); return Promise.resolve() },
      read (i) {
        const v = sel.get(i + 1)
        if (v === undefined) throw new Error(`sqlite: no row ${i + 1}`)
        return v
      },
      async replay () {
        let n = 0; let bytes = 0
        for (const v of db.prepare('SELECT v FROM log ORDER BY id').pluck().iterate()) { n++; bytes += v.length }
        return { n, bytes }
      },
      async replayBatched () {
        let n = 0; let bytes = 0; let last = 0
        for (;;) {
          const rows = page.all(last)
          if (rows.length === 0) break
          for (const r of rows) bytes += r[1].length
          n += rows.length
          last = rows[rows.length - 1][0]
        }
        return { n, bytes }
      },
      async close () { db.close() }
    }
  },

  async crashChild (dir, bytes) {
    const db = openDb(dir)
    const ins = db.prepare('INSERT INTO log (v) VALUES (?)')
    const many = db.transaction((bs) => { for (const b of bs) ins.run(b) })
    const N = 16384
    let written = 0
    let told = false
    for (let k = 0; ; k += N) {
      many(payloads(k, N))
      written += N * RECORD
      if (!told && written >= bytes) { told = true; process.stdout.write(`ready ${db.prepare('SELECT max(id) FROM log').pluck().get()}\n`) }
      if (k % (N * 16) === 0) await new Promise((resolve) => setImmediate(resolve)) // let the kill through promptly
    }
  },

  async recover (dir) {
    const db = openDb(dir)
    const end = db.prepare('SELECT coalesce(max(id), 0) FROM log').pluck().get()
    return { end, close: async () => db.close() }
  }
}
