import { WalError, fromIoError } from '../errors.js'
import { META_DIR } from '../meta.js'
import type { FileIO } from './file-io.js'

/**
 * The names in a log directory. A path that is missing or not a directory is the caller's
 * mistake, not an I/O failure: NOT_A_WAL, like a directory that holds no log.
 */
export function readLogDir (io: FileIO, dir: string): string[] {
  try {
    return io.readdir(dir)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException)?.code
    if (code === 'ENOENT') throw new WalError('NOT_A_WAL', `${dir} does not exist`, { dir })
    if (code === 'ENOTDIR') throw new WalError('NOT_A_WAL', `${dir} is not a directory`, { dir })
    throw fromIoError(err, `listing ${dir}`, { dir })
  }
}

/** The names in a directory that must already hold a log (readers, verify, replay): NOT_A_WAL if not. */
export function requireLogDir (io: FileIO, dir: string): string[] {
  const names = readLogDir(io, dir)
  if (!names.includes(META_DIR)) throw new WalError('NOT_A_WAL', `${dir} holds no write-ahead log`, { dir })
  return names
}
