// Child process for "open after crash": node bench/lib/crash-child.js <system> <dir> <bytes>
// Appends until `bytes` more payload bytes, prints "ready <end>", keeps appending until SIGKILLed
// (or until its parent is gone).
import { SYSTEMS } from '../peers/index.js'

const [system, dir, bytes] = process.argv.slice(2)
const sys = SYSTEMS[system]
if (sys === undefined) { console.error(`unknown system ${system}`); process.exit(2) }
// The parent holds our stdin open and SIGKILLs us once we are ready. If it dies first (Ctrl-C sent
// to it alone, a kill, a crash), stdin ends: stop, rather than append forever into the directory it
// removed on the way out (an orphaned SQLite child wrote ~1 GB into deleted files in 13 s).
process.stdin.on('end', () => process.exit(1)).resume()
await sys.crashChild(dir, Number(bytes))
