import fs from 'node:fs'
import nodePath from 'node:path'
import { osLock } from './os-lock.js'

/**
 * Every byte the log reads or writes goes through this interface. It is deliberately small so
 * that tests can put a faulty or power-losing disk behind it (see test/helpers/sim-disk.js)
 * and so that the append path is easy to audit: open, positional write, datasync, done.
 *
 * All calls are synchronous except the two `*Async` ones: measured on this machine, a thread-pool
 * round trip costs ~40-80 µs, almost the price of the fdatasync itself, so the single-partition
 * commit path stays on the main thread and only parallel syncs use the pool.
 */
export interface FileIO {
  /** 'r': read only; 'rw': existing file, read and write; 'wx': create a new file, fail if it exists. */
  open (path: string, mode: 'r' | 'rw' | 'wx'): number
  close (fd: number): void
  /** Returns the number of bytes written, which may be fewer than asked. */
  write (fd: number, buf: Uint8Array, off: number, len: number, pos: number): number
  /** Returns the number of bytes read; 0 means end of file. */
  read (fd: number, buf: Uint8Array, off: number, len: number, pos: number): number
  datasync (fd: number): void
  datasyncAsync (fd: number, cb: (err: Error | null) => void): void
  writeAsync (fd: number, buf: Uint8Array, off: number, len: number, pos: number, cb: (err: Error | null, written: number) => void): void
  truncate (fd: number, len: number): void
  size (fd: number): number
  /** Makes creations, renames and unlinks inside the directory durable. */
  syncDir (path: string): void
  mkdir (path: string): void
  readdir (path: string): string[]
  unlink (path: string): void
  rename (from: string, to: string): void
  exists (path: string): boolean
  /**
   * Gives `existing` a second name; fails with EEXIST if `newPath` exists. Optional: the lock uses
   * it to appear with its owner already written in it (without it, a second process opening at the
   * same instant can mistake a lock still being written for a torn one).
   */
  link?: (existing: string, newPath: string) => void
  /**
   * Takes the operating system's advisory lock on the whole open file without waiting: true if
   * granted, false if another open file holds one. `shared` asks for a read lock, all a read-only
   * descriptor can take. Optional: with it (and `sameFile`) the directory lock is held by the
   * kernel, which drops it when its holder dies; without it, the lock file alone decides.
   */
  tryLock?: (fd: number, shared: boolean) => boolean
  /** Whether `fd` is open on the file `path` names now (false if it names none). */
  sameFile?: (fd: number, path: string) => boolean
  /**
   * Names the running boot of the machine, or null if unknown. Two calls that return the same
   * value saw one page cache: nothing written in between was lost or reordered, whatever was not
   * yet synced. Recovery uses it to skip reading the preallocated tail after a process crash.
   * A FileIO that simulates a power loss must return a new value after one, or omit this.
   */
  bootId?: () => string | null
}

/**
 * mkdir -p, one level at a time. Node's own `recursive: true` retries for ever where a mkdir fails
 * with ENOENT under a parent that exists (any path under /proc): the log would hang at open.
 */
function mkdirParents (dir: string): void {
  const missing: string[] = []
  for (let d = nodePath.resolve(dir); !fs.existsSync(d); d = nodePath.dirname(d)) {
    missing.push(d)
    if (nodePath.dirname(d) === d) break
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    try {
      fs.mkdirSync(missing[i])
    } catch (err) {
      // Made meanwhile by someone else: what was wanted.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
  }
}

let bootIdCache: string | null | undefined
function readBootId (): string | null {
  if (bootIdCache === undefined) {
    try {
      bootIdCache = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim() || null
    } catch {
      bootIdCache = null
    }
  }
  return bootIdCache
}

const modeFlags = { r: 'r', rw: 'r+', wx: 'wx+' } as const

export const nodeFileIO: FileIO = {
  open: (path, mode) => fs.openSync(path, modeFlags[mode], 0o644),
  close: (fd) => fs.closeSync(fd),
  write: (fd, buf, off, len, pos) => fs.writeSync(fd, buf, off, len, pos),
  read: (fd, buf, off, len, pos) => fs.readSync(fd, buf, off, len, pos),
  datasync: (fd) => fs.fdatasyncSync(fd),
  datasyncAsync: (fd, cb) => fs.fdatasync(fd, (err) => cb(err)),
  writeAsync: (fd, buf, off, len, pos, cb) => fs.write(fd, buf, off, len, pos, (err, n) => cb(err, n)),
  truncate: (fd, len) => fs.ftruncateSync(fd, len),
  size: (fd) => fs.fstatSync(fd).size,
  syncDir: (path) => {
    const fd = fs.openSync(path, 'r')
    try { fs.fsyncSync(fd) } finally { fs.closeSync(fd) }
  },
  mkdir: mkdirParents,
  readdir: (path) => fs.readdirSync(path),
  unlink: (path) => fs.unlinkSync(path),
  rename: (from, to) => fs.renameSync(from, to),
  exists: (path) => fs.existsSync(path),
  link: (existing, newPath) => fs.linkSync(existing, newPath),
  bootId: readBootId,
  ...osLock
}
