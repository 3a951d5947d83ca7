/** Checks that a directory holds a log before a command opens it, with a clear error if not. */
import fs from 'node:fs'
import path from 'node:path'
import { WalError } from '../index.js'

export function requireLog (dir: string): void {
  let st: fs.Stats
  try {
    st = fs.statSync(dir)
  } catch {
    throw new WalError('NOT_A_WAL', `${dir} does not exist`, { dir })
  }
  if (!st.isDirectory()) throw new WalError('NOT_A_WAL', `${dir} is not a directory`, { dir })
  if (!fs.existsSync(path.join(dir, 'meta'))) throw new WalError('NOT_A_WAL', `${dir} holds no write-ahead log`, { dir })
}
