import type { FileIO } from '../io/file-io.js'
import { closed } from '../errors.js'

/**
 * Read descriptors of sealed segments, opened on demand and closed least-recently-used first, so
 * a log of 10,000 segments with many readers holds a bounded number of descriptors.
 */
export class FdCache {
  private readonly open = new Map<string, number>()
  /** After closeAll (the log's close()): a reader still going gets CLOSED, not a reopened file. */
  private closed = false

  constructor (private readonly io: FileIO, private readonly max: number) {}

  get (path: string): number {
    const fd = this.open.get(path)
    if (fd !== undefined) {
      this.open.delete(path)
      this.open.set(path, fd)
      return fd
    }
    if (this.closed) throw closed()
    const opened = this.io.open(path, 'r')
    this.open.set(path, opened)
    if (this.open.size > this.max) {
      const [oldPath, oldFd] = this.open.entries().next().value as [string, number]
      this.open.delete(oldPath)
      this.io.close(oldFd)
    }
    return opened
  }

  drop (path: string): void {
    const fd = this.open.get(path)
    if (fd === undefined) return
    this.open.delete(path)
    this.io.close(fd)
  }

  get size (): number { return this.open.size }

  closeAll (): void {
    this.closed = true
    for (const fd of this.open.values()) { try { this.io.close(fd) } catch {} }
    this.open.clear()
  }
}
