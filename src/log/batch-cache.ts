/**
 * Recently read index blocks (the batches between two sparse index entries), checksums already
 * verified, with the offset, position and batch of every record inside. A point read then costs
 * a binary search and one record decode instead of a pread, checksums and a walk: the difference
 * between ~150k and millions of reads per second when reads cluster, and the only way to read a
 * 16,384-record batch at random at all.
 */
export interface CachedBlock {
  buf: Buffer
  offsets: number[]
  positions: number[]
  batchAt: number[]
  bytes: number
}

export class BatchCache {
  private readonly map = new Map<string, CachedBlock>()
  private used = 0

  constructor (private readonly capacity: number) {}

  get (key: string): CachedBlock | undefined {
    const e = this.map.get(key)
    if (e !== undefined) { this.map.delete(key); this.map.set(key, e) }
    return e
  }

  set (key: string, e: CachedBlock): void {
    if (e.bytes > this.capacity) return
    this.map.set(key, e)
    this.used += e.bytes
    while (this.used > this.capacity) {
      const [k, old] = this.map.entries().next().value as [string, CachedBlock]
      this.map.delete(k)
      this.used -= old.bytes
    }
  }
}
