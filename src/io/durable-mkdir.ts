import path from 'node:path'
import type { FileIO } from './file-io.js'

/**
 * mkdir -p whose result survives a power cut. A new directory's name lives in its parent, which
 * only an fsync of the parent makes durable: without it, a crash could take the whole log
 * directory with it, acknowledged records included. Syncs nothing when everything existed.
 */
export function mkdirDurable (io: FileIO, dir: string): void {
  const created: string[] = []
  for (let d = path.resolve(dir); !io.exists(d); d = path.dirname(d)) {
    created.push(d)
    if (path.dirname(d) === d) break
  }
  if (created.length === 0) return
  io.mkdir(dir)
  // Outermost first: each new name is durable before anything is created under it is relied on.
  for (let i = created.length - 1; i >= 0; i--) io.syncDir(path.dirname(created[i]))
}
