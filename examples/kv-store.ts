// A key-value store on the log: `node dist/examples/kv-store.js` (run it twice).
//
// Every put and delete is a record keyed by the key; a delete is a tombstone (a null value), as in
// a compacted Kafka topic, so the log mirrors to and replays from Kafka as it is. The in-memory
// index maps each live key to the offset of its latest value and is rebuilt by replay on start.
// A snapshot writes every live key again as one atomic batch, with a checkpoint naming its first
// offset, in the same commit; everything before it is then garbage, and trimBefore deletes the
// whole sealed segments below it. Replay starts at the latest snapshot.
import { WriteAhead } from 'writeahead'

const DIR = process.env.WRITEAHEAD_DIR ?? './data-kv'
const P = 0
const SNAPSHOT = 'kv-snapshot'

class KvStore {
  private readonly index = new Map<string, number>()

  private constructor (readonly wal: WriteAhead) {}

  /** Opens the log and rebuilds the index: replay from the latest snapshot (or the start). */
  static async open (dir: string): Promise<{ store: KvStore, replayed: number, from: number }> {
    // Small segments so that trimming is visible in a small demo; maxBatchBytes bounds a snapshot.
    const wal = await WriteAhead.open(dir, { segmentBytes: 64 * 1024, maxBatchBytes: 32 * 1024, preallocate: false })
    const store = new KvStore(wal)
    const snap = wal.checkpoint(P, SNAPSHOT)
    const from = Math.max(snap === null ? 0 : Number(snap.toString()), wal.offsets(P).start)
    let replayed = 0
    for await (const batch of wal.iterateBatches(P, { from })) {
      for (const rec of batch) {
        store.apply(rec.key!.toString(), rec.value === null, rec.offset)
        replayed++
      }
    }
    return { store, replayed, from }
  }

  private apply (key: string, tombstone: boolean, offset: number): void {
    if (tombstone) this.index.delete(key)
    else this.index.set(key, offset)
  }

  get size (): number { return this.index.size }

  async put (key: string, value: string): Promise<void> {
    const offset = await this.wal.append(P, { key, value })
    this.apply(key, false, offset)
  }

  async delete (key: string): Promise<void> {
    if (!this.index.has(key)) return
    const offset = await this.wal.append(P, { key, value: null })
    this.apply(key, true, offset)
  }

  async get (key: string): Promise<string | undefined> {
    const offset = this.index.get(key)
    // The index holds only live keys, whose latest record has a value.
    return offset === undefined ? undefined : String((await this.wal.read(P, offset)).value)
  }

  async entries (): Promise<Array<[string, string]>> {
    const out: Array<[string, string]> = []
    for (const key of [...this.index.keys()].sort()) out.push([key, (await this.get(key))!])
    return out
  }

  /**
   * Rewrites every live key as one batch whose checkpoint is its own first offset (one commit:
   * both or neither survive a crash), then trims the segments below it.
   */
  async snapshot (): Promise<{ first: number, keys: number, start: number }> {
    const live = await this.entries()
    const first = this.wal.offsets(P).end // no other writer appends meanwhile in this demo
    const got = await this.wal.appendBatch(P, live.map(([key, value]) => ({ key, value })),
      { checkpoint: { name: SNAPSHOT, value: String(first) } })
    if (live.length > 0 && got !== first) throw new Error('a concurrent writer interleaved with the snapshot')
    live.forEach(([key], i) => this.index.set(key, first + i))
    const start = await this.wal.trimBefore(P, first)
    return { first, keys: live.length, start }
  }

  close (): Promise<void> { return this.wal.close() }
}

const segments = (wal: WriteAhead): string => `offsets ${wal.offsets(P).start}..${wal.offsets(P).end - 1}`

const opened = await KvStore.open(DIR)
let store = opened.store
console.log(opened.replayed === 0
  ? `new store in ${DIR}`
  : `rebuilt the index: ${store.size} keys by replaying ${opened.replayed} records from offset ${opened.from}`)

// A workload: 40 keys, overwritten many times, some deleted.
const run = Date.now()
for (let i = 0; i < 800; i++) await store.put(`key-${String(i % 40).padStart(2, '0')}`, `value ${i} of run ${run} ${'.'.repeat(100)}`)
for (let i = 0; i < 40; i += 5) await store.delete(`key-${String(i).padStart(2, '0')}`)
console.log(`wrote 800 puts and 8 deletes: ${store.size} live keys, log holds ${segments(store.wal)}`)
console.log(`get key-01 -> ${(await store.get('key-01'))?.slice(0, 30)}...; get key-00 -> ${String(await store.get('key-00'))}`)

const before = await store.entries()
const snap = await store.snapshot()
console.log(`snapshot: ${snap.keys} keys at offsets ${snap.first}..${snap.first + snap.keys - 1}; trimBefore(${snap.first}) -> log now starts at ${snap.start} (${snap.start > 0 ? 'older sealed segments deleted' : 'nothing to trim yet'})`)
await store.close()

// Reopen: the index is rebuilt from the snapshot on, and holds the same data.
const reopened = await KvStore.open(DIR)
store = reopened.store
const after = await store.entries()
console.log(`reopened: rebuilt ${store.size} keys by replaying ${reopened.replayed} records from offset ${reopened.from}; same as before: ${JSON.stringify(after) === JSON.stringify(before)}`)
await store.close()
