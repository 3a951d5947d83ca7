import os from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { WalError, fromIoError } from './errors.js'
import type { FileIO } from './io/file-io.js'
import { readFully, writeFully } from './io/full-io.js'

export const LOCK_FILE = 'LOCK'

/** Locks held by this process (per I/O layer), so a second open in the same process is refused too. */
const heldByIo = new WeakMap<FileIO, Set<string>>()
function held (io: FileIO): Set<string> {
  let s = heldByIo.get(io)
  if (s === undefined) { s = new Set(); heldByIo.set(io, s) }
  return s
}

interface LockInfo { pid: number, host: string, token: string }

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function parseLock (buf: Buffer, n: number): LockInfo | null {
  try { return JSON.parse(buf.subarray(0, n).toString()) as LockInfo } catch { return null }
}

/** The owner in the lock open at `fd` (null if unreadable), and how many bytes it takes. */
function readLockAt (io: FileIO, fd: number): { holder: LockInfo | null, n: number } {
  const buf = Buffer.alloc(512)
  const n = readFully(io, fd, buf, 0, buf.length, 0)
  return { holder: parseLock(buf, n), n }
}

function readLock (io: FileIO, file: string): LockInfo | null {
  try {
    const fd = io.open(file, 'r')
    try { return readLockAt(io, fd).holder } finally { io.close(fd) }
  } catch {
    return null
  }
}

/**
 * Opens an existing lock, for writing too where this process may (a lock left by another user may
 * only be readable): null if there is none.
 */
function openExisting (io: FileIO, file: string, dir: string): { fd: number, writable: boolean } | null {
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
function createLock (io: FileIO, file: string, info: Buffer, tmp: string, dir: string): boolean {
  const exists = (err: unknown): boolean => {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return true
    throw fromIoError(err, `locking ${dir}`)
  }
  if (io.link === undefined) {
    try { writeNew(io, file, info) } catch (err) { return !exists(err) }
    return true
  }
  try {
    writeNew(io, tmp, info)
    io.link(tmp, file)
    return true
  } catch (err) {
    return !exists(err)
  } finally {
    try { io.unlink(tmp) } catch {}
  }
}

/** Puts a new lock holding `info` in place of `file` through a rename. */
function replaceLock (io: FileIO, file: string, info: Buffer, tmp: string, dir: string): void {
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

const TEMP_LOCK = /^LOCK\.[0-9a-f]{16}\.(new|tmp)$/

/**
 * Removes the temporary lock files (createLock's `.new`, replaceLock's `.tmp`) that a process
 * killed between writing one and removing it left behind. Each names its owner like the lock
 * does; only those of a gone owner on this host go, so a live process racing for the lock keeps
 * its own, and so does one that has created its file but not yet written it (unreadable: kept,
 * even if its owner then died). Best effort: a leftover costs a few bytes, never correctness.
 */
function removeDeadTemps (io: FileIO, dir: string): void {
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

/**
 * One writer per directory. The lock file names its owner; a lock whose owner process is gone
 * (on this host) is stale and taken over, so a crash never blocks the log forever.
 */
export class DirLock {
  private constructor (private readonly io: FileIO, private readonly file: string, private readonly token: string) {}

  static acquire (io: FileIO, dir: string): DirLock {
    const file = path.join(dir, LOCK_FILE)
    const token = randomBytes(8).toString('hex')
    const info = Buffer.from(JSON.stringify({ pid: process.pid, host: os.hostname(), token }))
    const locked = (holder: LockInfo | null): WalError => new WalError('LOCKED', `${dir} is locked by another writer${holder === null ? '' : ` (pid ${holder.pid} on ${holder.host})`}`, { dir, pid: holder?.pid })
    const key = path.resolve(dir)
    const heldHere = held(io)
    if (heldHere.has(key)) throw locked({ pid: process.pid, host: os.hostname(), token: '' })
    // An existing lock is looked at first: after a crash it is there, and taking a stale one over
    // where it lies costs a few reads and one write, where creating a fresh one first costs a
    // file creation and a link that fail anyway (open after a crash is benchmarked against SQLite).
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = openExisting(io, file, dir)
      if (existing === null) {
        if (!createLock(io, file, info, `${file}.${token}.new`, dir)) continue // created meanwhile: look at it
        heldHere.add(key)
        removeDeadTemps(io, dir)
        return new DirLock(io, file, token)
      }
      const { fd, writable } = existing
      try {
        const { holder, n } = readLockAt(io, fd)
        const stale = holder !== null && holder.host === os.hostname() && (holder.pid === process.pid || !alive(holder.pid))
        if (!stale && holder !== null) throw locked(holder)
        if (holder === null && attempt < 2) {
          // Unreadable: torn by a crash, or (from an io without link) being written right now.
          // Retry, then take over.
          if (attempt === 1) { try { io.unlink(file) } catch {} }
          continue
        }
        // Stale: overwritten in place, padded with spaces (which JSON allows) over a longer
        // owner; one this process may not write is replaced through a rename. Then read back by
        // name, so that a lock unlinked and created anew meanwhile by another process is not
        // taken for ours.
        if (writable) {
          const mine = n > info.length ? Buffer.concat([info, Buffer.alloc(n - info.length, 0x20)]) : info
          writeFully(io, fd, mine, 0, mine.length, 0)
        }
      } catch (err) {
        if (err instanceof WalError) throw err
        throw fromIoError(err, `locking ${dir}`)
      } finally { io.close(fd) }
      if (!writable) replaceLock(io, file, info, `${file}.${token}.tmp`, dir)
      const now = readLock(io, file)
      if (now?.token !== token) throw locked(now)
      heldHere.add(key)
      removeDeadTemps(io, dir)
      return new DirLock(io, file, token)
    }
    throw locked(readLock(io, file))
  }

  release (): void {
    held(this.io).delete(path.resolve(path.dirname(this.file)))
    if (readLock(this.io, this.file)?.token === this.token) {
      try { this.io.unlink(this.file) } catch {}
    }
  }
}
