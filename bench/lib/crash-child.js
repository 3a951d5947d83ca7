// Child process for "open after crash": node bench/lib/crash-child.js <system> <dir> <bytes>
// Appends until `bytes` more payload bytes, prints "ready <end>", keeps appending until SIGKILLed.
import { SYSTEMS } from '../peers/index.js'

const [system, dir, bytes] = process.argv.slice(2)
const sys = SYSTEMS[system]
if (sys === undefined) { console.error(`unknown system ${system}`); process.exit(2) }
await sys.crashChild(dir, Number(bytes))
