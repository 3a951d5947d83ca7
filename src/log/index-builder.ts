import { emptyIndex, type SegmentIndex } from '../format/segment-file.js'

/**
 * Builds a segment's sparse offset index and time index as batches are written or scanned.
 * One entry every `interval` bytes keeps the index small (a 64 MiB segment needs ~16k entries
 * at 4 KiB) while a lookup reads at most one interval of log past the entry it lands on.
 */
export class IndexBuilder {
  readonly index: SegmentIndex
  private lastPos = -Infinity
  private lastTimePos = -Infinity
  private maxTs = Number.MIN_SAFE_INTEGER

  constructor (readonly base: number, readonly interval: number, index: SegmentIndex = emptyIndex()) {
    this.index = index
  }

  add (batchBase: number, pos: number, maxTimestamp: number): void {
    const idx = this.index
    const rel = batchBase - this.base
    if (pos - this.lastPos >= this.interval) {
      idx.offsets.push(rel)
      idx.positions.push(pos)
      this.lastPos = pos
    }
    // The time index maps "max timestamp so far" to the first batch that reached it, so a search
    // for the first record at or after T can start at the entry before the first one >= T.
    if (maxTimestamp > this.maxTs) {
      this.maxTs = maxTimestamp
      if (pos - this.lastTimePos >= this.interval) {
        idx.times.push(maxTimestamp)
        idx.timeOffsets.push(rel)
        this.lastTimePos = pos
      }
    }
  }
}

/** Largest i with arr[i] <= x, or -1. */
export function floorIndex (arr: ArrayLike<number>, x: number): number {
  let lo = 0
  let hi = arr.length - 1
  let ans = -1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    if (arr[mid] <= x) { ans = mid; lo = mid + 1 } else hi = mid - 1
  }
  return ans
}
