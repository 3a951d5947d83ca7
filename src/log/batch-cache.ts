import { LRUCache } from 'lru-cache'
import type { WalError } from '../errors.js'
import type { Segment } from './segment.js'

/**
 * The map of one index block (the batches between two sparse index entries) whose checksums were
 * verified when it was first read: where each record starts and ends in the segment file, and its
 * batch's offset and timestamp bases. A later point read into the block is then one pread of just
 * that record's bytes and one decode, instead of a pread of the whole block, its checksums and a
 * walk of every record before the one wanted. At ~8 bytes a record, 32 MiB maps about four
 * million records, where caching the blocks' bytes held a tenth of that.
 */
export interface CachedBlock {
  seg: Segment
  /** File position where the block ends (the open segment's last block grows). */
  to: number
  /** Offset of the block's first record. */
  first: number
  /** Each record's offset, or null when they run contiguously from `first` (no explicit-offset gaps). */
  offsets: Float64Array | null
  /** Each record's first byte and the byte after its last, as segment file positions. */
  starts: Uint32Array
  ends: Uint32Array
  /** Index of each batch's first record, and that batch's base offset and first timestamp. */
  batchFirst: Uint32Array
  batchBase: Float64Array
  batchTimestamp: Float64Array
  /** The block's bytes while it is among the most recently loaded (see BatchCache). */
  buf: Buffer | null
  /**
   * Null for a whole block. Otherwise the CORRUPTED error of the first batch that failed: the map
   * covers only the batches before it, and is never cached.
   */
  damage: WalError | null
  bytes: number
}

/** Share of the budget that keeps the bytes of recently loaded blocks. */
const BYTES_SHARE = 1 / 8

/**
 * Least recently used first out, by bytes, through lru-cache: an LRU made of a Map (delete and
 * re-insert on every hit) leaves deleted slots at the front that each eviction walks over, which
 * cost more than the read itself once the log outgrew the cache.
 *
 * Two tiers: block maps, and the bytes of the few blocks loaded last. Reads that cluster (one by
 * one through a range, or a hot set) are served from memory without a syscall, ~3x faster than a
 * pread per record; random reads over a large log are served by the maps, which the bytes would
 * otherwise crowd out tenfold.
 */
export class BatchCache {
  private readonly maps: LRUCache<number, CachedBlock> | null
  private readonly bytes: LRUCache<number, CachedBlock> | null
  private lastKey = -1

  constructor (capacity: number) {
    const bytesCap = Math.floor(capacity * BYTES_SHARE)
    this.bytes = bytesCap > 0
      ? new LRUCache({ maxSize: bytesCap, sizeCalculation: (e) => e.buf?.length ?? 1, dispose: (e) => { e.buf = null } })
      : null
    // A map evicted takes its bytes along, so the bytes tier never holds what no read can reach.
    this.maps = capacity > 0
      ? new LRUCache({ maxSize: capacity - bytesCap, sizeCalculation: (e) => e.bytes, dispose: (e, key) => { if (e.buf !== null) this.bytes?.delete(key) } })
      : null
  }

  /**
   * The block's map, or undefined to load it. A block read twice in a row whose bytes were let go
   * counts as missing: reads are walking through it again, and one load serves the rest of them.
   */
  get (key: number): CachedBlock | undefined {
    const e = this.maps?.get(key)
    const again = key === this.lastKey
    this.lastKey = key
    if (e !== undefined && e.buf === null && again && this.bytes !== null) return undefined
    return e
  }

  /** Caches `e`'s map, and its bytes (`e.buf`) in the recent tier. */
  set (key: number, e: CachedBlock): void {
    if (this.maps === null) return
    // lru-cache refuses an entry larger than its maxSize (and drops the key's old value), so
    // each tier is asked whether it kept the entry: bytes nobody accounts for are let go.
    this.maps.set(key, e)
    if (e.buf === null) return
    if (this.bytes !== null && this.maps.has(key)) this.bytes.set(key, e)
    if (this.bytes === null || !this.bytes.has(key)) e.buf = null
  }
}
