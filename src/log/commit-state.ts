/**
 * What one commit carries: its closed batches, the pieces they were written as, and the appends
 * waiting for it. A log has two that alternate (one gathering appends, one in flight) and reuses
 * them, slots and objects included: a serial writer commits on every append, and its garbage sets
 * how often a scavenge pauses the log (each pause delays an ack by ~0.3 ms: the p99.9 of serial
 * appends).
 */
import type { Segment } from './segment.js'
import { KEEP_SLOTS, Waiters } from './waiters.js'

/** A closed batch waiting in the encoder for its commit. */
export interface PendingBatch {
  start: number
  end: number
  base: number
  next: number
  minTs: number
  maxTs: number
  crc: number
  checkpoints: Map<string, Buffer> | null
  records: number
}

/** Part of a commit that went into one segment: batches [from, to), at file position shift + batch.start. */
export interface Piece { seg: Segment | null, shift: number, from: number, to: number }

/**
 * A list emptied by count rather than by `array.length = 0` (which frees the backing store, so the
 * next push allocates again): `items[0, length)` are in use, and their objects are reused.
 */
export class Slots<T> {
  readonly items: T[] = []
  length = 0

  constructor (private readonly make: () => T) {}

  /** The next slot's object, to be filled in by the caller. */
  next (): T {
    if (this.length === this.items.length) this.items.push(this.make())
    return this.items[this.length++]
  }

  get last (): T { return this.items[this.length - 1] }

  /** Empties the list, keeping at most KEEP_SLOTS objects for reuse (see Waiters). */
  clear (): void {
    this.length = 0
    if (this.items.length > KEEP_SLOTS) this.items.length = KEEP_SLOTS
  }
}

export class CommitState {
  readonly batches = new Slots<PendingBatch>(() => ({ start: 0, end: 0, base: 0, next: 0, minTs: 0, maxTs: 0, crc: 0, checkpoints: null, records: 0 }))
  readonly pieces = new Slots<Piece>(() => ({ seg: null, shift: 0, from: 0, to: 0 }))
  readonly waiters = new Waiters()
  /** The log's next offset when the first append joined this commit (a failed write rolls back to it). */
  firstOffset = -1

  get isEmpty (): boolean { return this.waiters.length === 0 && this.batches.length === 0 }

  /** Forgets everything but the storage; the appends must have been settled already. */
  clear (): void {
    for (let i = 0; i < this.batches.length; i++) this.batches.items[i].checkpoints = null
    for (let i = 0; i < this.pieces.length; i++) this.pieces.items[i].seg = null
    this.batches.clear()
    this.pieces.clear()
    this.firstOffset = -1
  }
}
