/**
 * The appends of one commit, waiting for it to be durable. Flat arrays reused commit after commit
 * rather than an object and a closure per append: a serial writer allocates on every append, and
 * that garbage decides how often a scavenge pauses the log (each pause is an ack delayed by
 * ~0.3 ms: the p99.9 of serial appends).
 */
/** Appends per commit whose slots are kept for the next commit; a larger burst's are let go. */
export const KEEP_SLOTS = 1024

export class Waiters {
  /**
   * resolve, reject of each append, in pairs, and each append's offset: slots [0, length) are in
   * use. Emptied by count, not by `array.length = 0`, which would drop the backing store and make
   * the next push allocate a new one.
   */
  private settle: Array<((v: never) => void) | null> = []
  private offsets: number[] = []
  private count = 0
  // Writing at index `length` appends, so a slot past the used ones grows the array as push would.
  private readonly executor = (resolve: (offset: number) => void, reject: (err: Error) => void): void => {
    const i = 2 * (this.count - 1)
    this.settle[i] = resolve as (v: never) => void
    this.settle[i + 1] = reject as (v: never) => void
  }

  get length (): number { return this.count }

  /**
   * After a burst (many appends in one commit), fresh lists: kept, the grown ones would hold their
   * size for the life of the log, ~40 bytes per append of the largest burst ever seen.
   */
  private emptied (n: number): void {
    this.count = 0
    if (n <= KEEP_SLOTS) return
    this.settle = []
    this.offsets = []
  }

  /** A promise for an append whose first record gets `offset`. */
  add (offset: number): Promise<number> {
    this.offsets[this.count++] = offset
    return new Promise<number>(this.executor)
  }

  /** Settles every append (their callbacks run later, as promise reactions) and empties the list. */
  resolveAll (): void {
    const { settle, offsets } = this
    const n = this.count
    this.emptied(n)
    for (let i = 0; i < n; i++) {
      const resolve = settle[2 * i] as (offset: number) => void
      settle[2 * i] = settle[2 * i + 1] = null
      resolve(offsets[i])
    }
  }

  rejectAll (err: Error): void {
    const { settle } = this
    const n = this.count
    this.emptied(n)
    for (let i = 0; i < n; i++) {
      const reject = settle[2 * i + 1] as (e: Error) => void
      settle[2 * i] = settle[2 * i + 1] = null
      reject(err)
    }
  }
}
