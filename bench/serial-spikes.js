// Where serial appends' slow acknowledgements fall: two timed windows back to back on one freshly
// opened log after only 300 appends (not the bench's WARM_APPENDS), each reporting p99.9 and how
// many appends took over 0.5 ms, beside the floor's loop measured just before them. The first
// window is a process's start: V8 still compiling the append path on the other core, which on this
// 2-core VM delays the kernel worker that issues each fdatasync's flush.
//
//   node bench/serial-spikes.js [--runs=4] [--ms=1500]
import { parseArgs } from 'node:util'
import WAL from './peers/writeahead.js'
import { floorSerial, closeFloor } from './floor.js'
import { Lat, checkDisk, cleanupWork, freshDir, now, payload, progress } from './lib/common.js'

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '4' },
    ms: { type: 'string', default: '1500' },
    help: { type: 'boolean', short: 'h', default: false }
  }
})
if (args.help) {
  process.stdout.write('usage: node bench/serial-spikes.js [--runs=4] [--ms=1500]\n')
  process.exit(0)
}
const runs = Number(args.runs)
const ms = Number(args.ms)
for (const [k, v] of [['runs', runs], ['ms', ms]]) {
  if (!Number.isSafeInteger(v) || v < 1) { process.stderr.write(`--${k} must be a positive integer\n`); process.exit(2) }
}
checkDisk()

async function window (h) {
  const lat = new Lat()
  let slow = 0
  const start = now()
  let t = start
  for (let i = 0; t < start + ms; i++) {
    await h.append(payload(i))
    const t2 = now()
    const us = (t2 - t) * 1000
    lat.push(us)
    if (us > 500) slow++
    t = t2
  }
  return { p999: lat.pct(0.999), slow }
}

const rows = []
try {
  for (let i = 0; i < runs; i++) {
    progress(`run ${i + 1}/${runs}`)
    const floor = floorSerial(ms)
    const dir = freshDir('spikes')
    const h = await WAL.open(dir)
    try {
      for (let j = 0; j < 300; j++) await h.append(payload(j))
      rows.push({ floor: floor.p999, first: await window(h), second: await window(h) })
    } finally {
      await h.close()
    }
  }
} finally {
  closeFloor()
  cleanupWork()
}
const us = (x) => `${x.toFixed(0)} µs`
process.stdout.write(`serial appends, windows of ${ms} ms: p99.9 and appends over 0.5 ms\n`)
for (const r of rows) {
  process.stdout.write(`  floor p99.9 ${us(r.floor)} | first window ${us(r.first.p999)}, ${r.first.slow} slow | second window ${us(r.second.p999)}, ${r.second.slow} slow\n`)
}
