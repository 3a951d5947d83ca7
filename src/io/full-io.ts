import type { FileIO } from './file-io.js'

const RETRYABLE = new Set(['EINTR', 'EAGAIN'])
const MAX_RETRIES = 100

/**
 * A short write is not a success: keep writing the rest, and treat a write that makes no
 * progress as an I/O error rather than spinning forever.
 */
export function writeFully (io: FileIO, fd: number, buf: Uint8Array, off: number, len: number, pos: number): void {
  let retries = 0
  while (len > 0) {
    let n: number
    try {
      n = io.write(fd, buf, off, len, pos)
    } catch (err) {
      if (RETRYABLE.has((err as NodeJS.ErrnoException).code ?? '') && ++retries < MAX_RETRIES) continue
      throw err
    }
    if (n <= 0) {
      if (++retries < MAX_RETRIES) continue
      throw Object.assign(new Error('write made no progress'), { code: 'EIO' })
    }
    off += n; len -= n; pos += n
  }
}

/** Reads until `len` bytes or end of file; an interrupted read is retried, not taken as EOF. */
export function readFully (io: FileIO, fd: number, buf: Uint8Array, off: number, len: number, pos: number): number {
  let total = 0
  let retries = 0
  while (len > 0) {
    let n: number
    try {
      n = io.read(fd, buf, off, len, pos)
    } catch (err) {
      if (RETRYABLE.has((err as NodeJS.ErrnoException).code ?? '') && ++retries < MAX_RETRIES) continue
      throw err
    }
    if (n === 0) break
    total += n; off += n; len -= n; pos += n
  }
  return total
}
