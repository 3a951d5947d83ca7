import os from 'node:os'
import type { FileIO } from '../io/file-io.js'
import { readFully } from '../io/full-io.js'

/**
 * What a lock file holds: its owner, as JSON. `os` says the owner also holds the operating
 * system's lock on the file, so that lock, not the pid, tells whether the owner is still there.
 */
export interface LockInfo { pid: number, host: string, token: string, os?: boolean }

export function lockInfo (token: string, osLocked: boolean): Buffer {
  const info: LockInfo = { pid: process.pid, host: os.hostname(), token }
  if (osLocked) info.os = true
  return Buffer.from(JSON.stringify(info))
}

export function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Whether the file alone shows its owner gone: a process of this host that no longer runs (or this
 * very process, whose earlier lock was never released). Another host's owner is never judged
 * gone: its pids mean nothing here.
 */
export function ownerGone (holder: LockInfo): boolean {
  return holder.host === os.hostname() && (holder.pid === process.pid || !alive(holder.pid))
}

function parseLock (buf: Buffer, n: number): LockInfo | null {
  try { return JSON.parse(buf.subarray(0, n).toString()) as LockInfo } catch { return null }
}

/** Longest lock file whose owner can be read. */
export const LOCK_READ_BYTES = 512

/** The owner in the lock open at `fd` (null if unreadable, or longer than LOCK_READ_BYTES). */
export function readLockAt (io: FileIO, fd: number): LockInfo | null {
  const buf = Buffer.alloc(LOCK_READ_BYTES)
  const n = readFully(io, fd, buf, 0, buf.length, 0)
  return parseLock(buf, n)
}

export function readLock (io: FileIO, file: string): LockInfo | null {
  try {
    const fd = io.open(file, 'r')
    try { return readLockAt(io, fd) } finally { io.close(fd) }
  } catch {
    return null
  }
}
