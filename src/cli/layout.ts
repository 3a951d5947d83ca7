/** Checks that a directory holds a log before a command opens it, with a clear error if not. */
import { nodeFileIO } from '../index.js'
import { requireLogDir } from '../io/log-dir.js'

export function requireLog (dir: string): void {
  requireLogDir(nodeFileIO, dir)
}
