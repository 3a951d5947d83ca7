import { WalError, fromIoError } from '../errors.js'
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
