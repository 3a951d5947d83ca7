/** Checks that a directory holds a log before a command opens it, with a clear error if not. */
import fs from 'node:fs'
import { WalError, nodeFileIO } from '../index.js'
import { readLogDir, requireLogDir } from '../io/log-dir.js'
import { LOCK_FILE } from '../lock/index.js'
import { META_DIR } from '../meta.js'

export function requireLog (dir: string): void {
  requireLogDir(nodeFileIO, dir)
}

/**
 * For a command that creates its log (mirror): the path is missing, an empty directory or a log,
 * as WriteAhead.open requires. Mirror opens the log only once Kafka has told it the topic's
 * partitions, so without this a file or someone else's directory is reported only after
 * connecting (or, with brokers that do not answer, never: a timeout is all the user sees).
 */
export function requireLogOrNothing (dir: string): void {
  if (!fs.existsSync(dir)) return
  const names = readLogDir(nodeFileIO, dir).filter((n) => n !== LOCK_FILE && !n.startsWith(`${LOCK_FILE}.`))
  if (names.length > 0 && !names.includes(META_DIR)) throw new WalError('NOT_A_WAL', `${dir} is not empty and holds no write-ahead log`, { dir })
}
