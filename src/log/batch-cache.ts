import { LRUCache } from 'lru-cache'
import type { Segment } from './segment.js'

/**
 * Recently read index blocks (the batches between two sparse index entries), checksums already
 * verified, with the offset, position and batch of every record inside. A point read then costs
 * a binary search and one record decode instead of a pread, checksums and a walk: the difference
 * between ~150k and millions of reads per second when reads cluster, and the only way to read a
 * 16,384-record batch at random at all.
 */
export interface CachedBlock {
  seg: Segment
  /** File position where the block ends. */
  to: number
  buf: Buffer
  offsets: number[]
  positions: number[]
  batchAt: number[]
  bytes: number
}

/**
 * Least recently used first out, by bytes, through lru-cache: an LRU made of a Map (delete and
 * re-insert on every hit) leaves deleted slots at the front that each eviction walks over, which
 * cost more than the read itself once the log outgrew the cache.
 */
export class BatchCache {
  private readonly lru: LRUCache<number, CachedBlock> | null

  constructor (capacity: number) {
    this.lru = capacity > 0 ? new LRUCache({ maxSize: capacity, sizeCalculation: (e) => e.bytes }) : null
  }

  get (key: number): CachedBlock | undefined {
    return this.lru?.get(key)
  }

  set (key: number, e: CachedBlock): void {
    // lru-cache refuses entries larger than maxSize itself (and drops the old value of the key).
    this.lru?.set(key, e)
  }
}
