import os from 'node:os'
import path from 'node:path'
import { fromIoError } from '../errors.js'
import type { FileIO } from '../io/file-io.js'
import { writeFully } from '../io/full-io.js'
import { LOCK_READ_BYTES, alive, readLock } from './owner.js'

/**
 * Opens an existing lock, for writing too where this process may (a lock left by another user may
 * only be readable): null if there is none.
 */
export function openExisting (io: FileIO, file: string, dir: string): { fd: number, writable: boolean } | null {
  for (const mode of ['rw', 'r'] as const) {
    try {
      return { fd: io.open(file, mode), writable: mode === 'rw' }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return null
      if (mode === 'rw' && (code === 'EACCES' || code === 'EPERM')) continue
      throw fromIoError(err, `locking ${dir}`)
    }
  }
  return null
}

/**
 * Creates the lock file holding `info`; false if it exists. With `io.link`, the content is written
 * under a private name first and then linked into place, so the lock never exists empty: a second
 * process that found it empty would take it for one torn by a crash and take it over, and both
 * would write. Without link: create, then write (that window stays open).
 */
export function createLock (io: FileIO, file: string, info: Buffer, tmp: string, dir: string): boolean {
  let fd: number
  try {
    fd = createHeld(io, file, info, tmp, () => true)
  } catch (err) {
    throw fromIoError(err, `locking ${dir}`)
  }
  if (fd < 0) return false
  io.close(fd)
  return true
}

/**
 * Creates LOCK holding `info`, with `tryLock` (the kernel's lock) taken before anyone can open it,
 * and returns the descriptor that holds it; -1 if LOCK exists. With `io.link` the file is written
 * under a private name and linked into place, so that it never exists empty.
 */
export function createHeld (io: FileIO, file: string, info: Buffer, tmp: string, tryLock: NonNullable<FileIO['tryLock']>): number {
  const link = io.link
  const name = link === undefined ? file : tmp
  let fd: number
  try {
    fd = io.open(name, 'wx')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return -1
    throw err
  }
  let holding = false
  try {
    // Without link, another process can open the new, empty LOCK before this lock is taken.
    if (!tryLock(fd, false)) return -1
    writeFully(io, fd, info, 0, info.length, 0)
    if (link !== undefined) {
      try {
        io.link?.(name, file)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') return -1
        throw err
      }
    }
    holding = true
    return fd
  } finally {
    if (link !== undefined) { try { io.unlink(name) } catch {} }
    if (!holding) io.close(fd)
  }
}

/** Puts a new lock holding `info` in place of `file` through a rename. */
export function replaceLock (io: FileIO, file: string, info: Buffer, tmp: string, dir: string): void {
  try {
    writeNew(io, tmp, info)
    io.rename(tmp, file)
  } catch (err) {
    try { io.unlink(tmp) } catch {}
    throw fromIoError(err, `locking ${dir}`)
  }
}

/** Creates `file` (EEXIST if it exists) holding `info`. */
function writeNew (io: FileIO, file: string, info: Buffer): void {
  const fd = io.open(file, 'wx')
  try { writeFully(io, fd, info, 0, info.length, 0) } finally { io.close(fd) }
}

/**
 * Overwrites the lock open at `fd` with `info`, in one write: padded with spaces (which JSON allows)
 * over a longer owner, so that the file never holds ours followed by the end of another's. A file
 * too long to have been readable is cut after the write.
 */
export function overwriteLock (io: FileIO, fd: number, info: Buffer): void {
  const size = io.size(fd)
  const padded = size > info.length && size <= LOCK_READ_BYTES
  const mine = padded ? Buffer.concat([info, Buffer.alloc(size - info.length, 0x20)]) : info
  writeFully(io, fd, mine, 0, mine.length, 0)
  if (size > LOCK_READ_BYTES) io.truncate(fd, info.length)
}

const TEMP_LOCK = /^LOCK\.[0-9a-f]{16}\.(new|tmp)$/

/**
 * Removes the temporary lock files (createLock's `.new`, replaceLock's `.tmp`) that a process
 * killed between writing one and removing it left behind. Each names its owner like the lock
 * does; only those of a gone owner on this host go, so a live process racing for the lock keeps
 * its own, and so does one that has created its file but not yet written it (unreadable: kept,
 * even if its owner then died). Best effort: a leftover costs a few bytes, never correctness.
 */
export function removeDeadTemps (io: FileIO, dir: string): void {
  let names: string[]
  try { names = io.readdir(dir) } catch { return }
  for (const name of names) {
    if (!TEMP_LOCK.test(name)) continue
    const file = path.join(dir, name)
    const owner = readLock(io, file)
    if (owner !== null && owner.host === os.hostname() && owner.pid !== process.pid && !alive(owner.pid)) {
      try { io.unlink(file) } catch {}
    }
  }
}
