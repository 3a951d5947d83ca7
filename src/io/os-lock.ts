import fs from 'node:fs'
import { createRequire } from 'node:module'

/**
 * Advisory whole-file locks from the operating system, through fs-native-extensions (on Linux an
 * open file description lock, fcntl F_OFD_SETLK). The kernel drops such a lock when the file is
 * closed or its holder dies, however it dies: unlike a lock file naming a process id, it cannot go
 * stale, be taken over by two processes at once, or be mistaken for a live one because its pid was
 * reused. Node has no flock of its own.
 *
 * Loaded once, at import, so that the first open of a log (timed after a crash) does not pay for
 * resolving the addon. Where no prebuilt binary loads (an unusual platform), this is null and the
 * directory lock goes by the lock file alone.
 */
interface FsExt { tryLock: (fd: number, opts: { shared: boolean }) => boolean }

function load (): FsExt | null {
  // Windows' locks are mandatory: while held, nobody could read the owner out of the file.
  if (process.platform === 'win32') return null
  try {
    return createRequire(import.meta.url)('fs-native-extensions') as FsExt
  } catch {
    return null
  }
}

const fsExt = load()

/**
 * True if granted; false if another open file holds a conflicting lock. A read lock (`shared`) is
 * all a read-only descriptor can take. EACCES is POSIX's other way of saying "held".
 */
function tryLock (fd: number, shared: boolean): boolean {
  try {
    return (fsExt as FsExt).tryLock(fd, { shared })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EACCES') return false
    throw err
  }
}

/** Whether `fd` is open on the file `path` names now (false if it names none). */
function sameFile (fd: number, path: string): boolean {
  const open = fs.fstatSync(fd, { bigint: true })
  const named = fs.statSync(path, { bigint: true, throwIfNoEntry: false })
  return named !== undefined && named.ino === open.ino && named.dev === open.dev
}

export const osLock = fsExt === null ? null : { tryLock, sameFile }
