import os from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { WalError, fromIoError } from '../errors.js'
import type { FileIO } from '../io/file-io.js'
import { createHeld, createLock, openExisting, overwriteLock, removeDeadTemps, replaceLock } from './lock-file.js'
import { lockInfo, ownerGone, readLock, readLockAt, type LockInfo } from './owner.js'

export const LOCK_FILE = 'LOCK'

/** Locks held by this process (per I/O layer), so a second open in the same process is refused too. */
const heldByIo = new WeakMap<FileIO, Set<string>>()
function held (io: FileIO): Set<string> {
  let s = heldByIo.get(io)
  if (s === undefined) { s = new Set(); heldByIo.set(io, s) }
  return s
}

/** Rounds of looking at the lock before giving up with LOCKED: each is lost only to another process's move. */
const ATTEMPTS = 5

function lockedError (dir: string, holder: LockInfo | null): WalError {
  return new WalError('LOCKED', `${dir} is locked by another writer${holder === null ? '' : ` (pid ${holder.pid} on ${holder.host})`}`, { dir, pid: holder?.pid })
}

/**
 * One writer per directory, through `<dir>/LOCK`, which names its owner (pid, host).
 *
 * Where the I/O layer offers the operating system's file lock (`io.tryLock`, the default on
 * Linux and macOS), the writer holds that lock on LOCK while open. The kernel drops it
 * when the writer dies, so a crash never blocks the log, and only one process can hold it, so two
 * processes taking over after a crash cannot both win. The owner written in the file then only
 * names the holder in LOCKED errors, and keeps out writers that go by the file alone.
 *
 * Without it, the file alone decides: a lock whose owner process is gone (on this host) is stale
 * and taken over.
 */
export class DirLock {
  private constructor (
    private readonly io: FileIO,
    private readonly file: string,
    private readonly token: string,
    /** The descriptor holding the operating system's lock, or -1. */
    private readonly fd: number
  ) {}

  static acquire (io: FileIO, dir: string): DirLock {
    const file = path.join(dir, LOCK_FILE)
    const key = path.resolve(dir)
    const heldHere = held(io)
    if (heldHere.has(key)) throw lockedError(dir, { pid: process.pid, host: os.hostname(), token: '' })
    const token = randomBytes(8).toString('hex')
    let fd = io.tryLock !== undefined && io.sameFile !== undefined ? lockHeldByKernel(io, dir, file, token) : null
    if (fd === null) {
      lockByFile(io, dir, file, token)
      fd = -1
    }
    heldHere.add(key)
    removeDeadTemps(io, dir)
    return new DirLock(io, file, token, fd)
  }

  release (): void {
    held(this.io).delete(path.resolve(path.dirname(this.file)))
    // Unlinked while still held: a process that opened it meanwhile finds, once it gets the
    // kernel's lock, that LOCK no longer names its file, and looks again.
    if (readLock(this.io, this.file)?.token === this.token) {
      try { this.io.unlink(this.file) } catch {}
    }
    if (this.fd >= 0) this.io.close(this.fd)
  }
}

/** What a file system without lock support (some network and FUSE mounts) answers fcntl with. */
const NO_LOCKS = new Set(['ENOLCK', 'EOPNOTSUPP', 'ENOTSUP', 'ENOSYS', 'EINVAL'])

/**
 * Takes the kernel's lock on LOCK and returns the descriptor that holds it, or null if the file
 * system has no such locks (the lock file alone decides there). Each round either creates LOCK,
 * locked before it can be seen, or opens what LOCK names, asks for the lock, and checks that LOCK
 * still names the file locked: one released (unlinked) since it was opened is looked at again.
 */
function lockHeldByKernel (io: FileIO, dir: string, file: string, token: string): number | null {
  const tryLock = io.tryLock as NonNullable<FileIO['tryLock']>
  const sameFile = io.sameFile as NonNullable<FileIO['sameFile']>
  const info = lockInfo(token, true)
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    let fd = -1
    let holding = false
    try {
      const existing = openExisting(io, file, dir)
      if (existing === null) {
        fd = createHeld(io, file, info, `${file}.${token}.new`, tryLock)
        if (fd < 0 || !sameFile(fd, file)) continue // another process created it first: lock what is there
        holding = true
        return fd
      }
      fd = existing.fd
      // A descriptor opened read-only (another user's file) can only take the shared lock.
      if (!tryLock(fd, !existing.writable)) {
        if (!sameFile(fd, file)) continue // its holder released it meanwhile
        throw lockedError(dir, readLockAt(io, fd))
      }
      if (!sameFile(fd, file)) continue
      const holder = readLockAt(io, fd)
      // The kernel's lock is ours, so an owner of this host that took it too is gone, whatever
      // its pid names now. One that did not (a writer going by the file alone) is judged by the
      // file, and so is another host's: shared storage mounted without lock support grants every
      // host its own lock.
      const gone = holder === null || (holder.os === true ? holder.host === os.hostname() : ownerGone(holder))
      if (!gone) throw lockedError(dir, holder)
      if (!existing.writable) {
        // Replacing it through a rename is not safe here: two processes may both hold a read
        // lock on it, and each would rename its own file over the other's.
        throw new WalError('LOCKED', `${dir}: the lock's owner is gone, but this process may not write ${file}: delete it`, { dir, pid: holder?.pid })
      }
      overwriteLock(io, fd, info)
      holding = true
      return fd
    } catch (err) {
      if (err instanceof WalError) throw err
      if (NO_LOCKS.has((err as NodeJS.ErrnoException).code ?? '')) return null
      throw fromIoError(err, `locking ${dir}`)
    } finally {
      if (!holding && fd >= 0) io.close(fd)
    }
  }
  throw lockedError(dir, readLock(io, file))
}

/**
 * The lock file alone: a lock whose owner is gone is stale and taken over. Two processes taking
 * over one stale lock at the same instant can, in a window of a few calls, both believe they won;
 * only an I/O layer without `tryLock` comes here.
 */
function lockByFile (io: FileIO, dir: string, file: string, token: string): void {
  const info = lockInfo(token, false)
  // An existing lock is looked at first: after a crash it is there, and taking a stale one over
  // where it lies costs a few reads and one write, where creating a fresh one first costs a
  // file creation and a link that fail anyway.
  for (let attempt = 0; attempt < 3; attempt++) {
    const existing = openExisting(io, file, dir)
    if (existing === null) {
      if (createLock(io, file, info, `${file}.${token}.new`, dir)) return
      continue // created meanwhile: look at it
    }
    const { fd, writable } = existing
    try {
      const holder = readLockAt(io, fd)
      if (holder !== null && !ownerGone(holder)) throw lockedError(dir, holder)
      if (holder === null && attempt < 2) {
        // Unreadable: torn by a crash, or (from an io without link) being written right now.
        // Retry, then take over.
        if (attempt === 1) { try { io.unlink(file) } catch {} }
        continue
      }
      // Stale: overwritten in place; one this process may not write is replaced through a
      // rename. Then read back by name, so that a lock unlinked and created anew meanwhile by
      // another process is not taken for ours.
      if (writable) overwriteLock(io, fd, info)
    } catch (err) {
      if (err instanceof WalError) throw err
      throw fromIoError(err, `locking ${dir}`)
    } finally { io.close(fd) }
    if (!writable) replaceLock(io, file, info, `${file}.${token}.tmp`, dir)
    const now = readLock(io, file)
    if (now?.token !== token) throw lockedError(dir, now)
    return
  }
  throw lockedError(dir, readLock(io, file))
}
