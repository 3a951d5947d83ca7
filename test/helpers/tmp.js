import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/** A fresh directory on the real disk (never tmpfs: these tests are about fsync), removed after the test. */
export function tmpDir (t, name = 'wal') {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'writeahead-test-'))
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }))
  return path.join(root, name)
}

export function segmentFiles (dir, p = 0) {
  return fs.readdirSync(path.join(dir, `partition-${p}`)).filter((n) => n.endsWith('.log')).sort()
}

export function partitionPath (dir, p = 0, file = '') {
  return path.join(dir, `partition-${p}`, file)
}

export async function collect (iterable) {
  const out = []
  for await (const r of iterable) out.push(r)
  return out
}

/** Small segments so rotation happens often; no preallocation so files stay small. */
export const small = { segmentBytes: 16 * 1024, preallocate: false }
