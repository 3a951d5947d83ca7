import path from 'node:path'
import { corrupted } from './errors.js'
import { PartitionLog, type LogOptions } from './log/partition-log.js'

export const META_DIR = 'meta'
export const META_ID = 0xffffffff
const EMPTY = Buffer.alloc(0)

/**
 * The meta log: an ordinary log in the same format whose commits carry only checkpoints
 * (name -> value), such as the creation options and, later, group cursors. A new segment starts
 * with a snapshot of every value (the carried checkpoints), and older segments are then deleted,
 * so the meta log stays small however many commits it takes.
 */
export class Meta {
  private constructor (readonly log: PartitionLog) {}

  static open (base: Omit<LogOptions, 'dir' | 'id' | 'segmentBytes' | 'maxBatchBytes' | 'maxRecordBytes' | 'compactOnRotate' | 'indexInterval'>, dir: string, segmentBytes: number): Meta {
    const log = PartitionLog.open({
      ...base,
      dir: path.join(dir, META_DIR),
      id: META_ID,
      segmentBytes,
      maxBatchBytes: Math.floor(segmentBytes / 2),
      maxRecordBytes: 1,
      indexInterval: 64 * 1024,
      // Group cursor commits are small and often one per sync: into zero-filled blocks, each
      // fdatasync has no file size to journal (measured here: ~145 µs a commit into a growing
      // file, ~100 µs into a prepared one).
      preallocate: base.preallocate,
      compactOnRotate: true,
      sync: base.sync === 'never' ? 'never' : 'always'
    })
    return new Meta(log)
  }

  get (name: string): Buffer | undefined {
    this.log.refresh() // read-only: follow the writer's commits
    return this.log.checkpoints.get(name)
  }

  getJSON<T> (name: string): T | undefined {
    const v = this.get(name)
    if (v === undefined) return undefined
    try {
      return JSON.parse(v.toString()) as T
    } catch {
      throw corrupted(`meta value ${name} is not valid JSON`, { partition: META_ID, segment: 'meta' })
    }
  }

  /**
   * Durable when the promise resolves. Each commit also appends one empty record, so that meta
   * offsets advance and every meta segment gets a distinct base offset.
   */
  set (values: Map<string, Buffer>): Promise<number> {
    return this.log.append([{ key: null, value: EMPTY, headerKeys: [], headerValues: [], timestamp: Date.now(), size: 0 }], values, null)
  }

  close (): Promise<void> {
    return this.log.close()
  }
}
