// Large batches against two floors, interleaved in one run: the floor (write + fdatasync
// rewriting one pre-written 64 MiB file in place) and the same loop appending to a new file, as any
// log must append new data. On this VM the first stays in a cache the second never reaches, so at
// 16,384 records a commit the log is measured against a rate no appending writer can have.
//
//   node bench/fresh-floor.js [--count=16384] [--runs=5] [--ms=800]
import { parseArgs } from 'node:util'
import WAL from './peers/writeahead.js'
import { floorBatch, closeFloor } from './floor.js'
import { RECORD, checkDisk, cleanupWork, freshDir, median, now, payloads, progress } from './lib/common.js'

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '16384' },
    runs: { type: 'string', default: '5' },
    ms: { type: 'string', default: '800' },
    help: { type: 'boolean', short: 'h', default: false }
  }
})
if (args.help) {
  process.stdout.write('usage: node bench/fresh-floor.js [--count=16384] [--runs=5] [--ms=800]\n' +
    'appendBatch of --count records against the pre-written floor and a floor appending to a new file\n')
  process.exit(0)
}
const count = Number(args.count)
const runs = Number(args.runs)
const ms = Number(args.ms)
for (const [k, v] of [['count', count], ['runs', runs], ['ms', ms]]) {
  if (!Number.isSafeInteger(v) || v < 1) { process.stderr.write(`--${k} must be a positive integer\n`); process.exit(2) }
}
checkDisk()

async function walRun () {
  const dir = freshDir('fresh-wal')
  const h = await WAL.open(dir, { warm: true })
  const bs = [0, 1, 2, 3].map((j) => payloads(j * count, count, RECORD))
  try {
    let n = 0
    let k = 0
    const start = now()
    let t = start
    while (t < start + ms) {
      await h.appendBatch(bs[k++ & 3])
      n += count
      t = now()
    }
    return n / ((t - start) / 1000)
  } finally {
    await h.close()
  }
}

const got = { prewritten: [], fresh: [], writeahead: [] }
try {
  for (let i = 0; i < runs; i++) {
    progress(`round ${i + 1}/${runs}`)
    got.prewritten.push(floorBatch(count, RECORD, ms).rate)
    got.fresh.push(floorBatch(count, RECORD, ms, { fresh: true }).rate)
    got.writeahead.push(await walRun())
  }
} finally {
  closeFloor()
  cleanupWork()
}
const m = Object.fromEntries(Object.entries(got).map(([k, v]) => [k, median(v)]))
const fmt = (x) => `${(x / 1e6).toFixed(2)}M`
process.stdout.write(`${count} records of ${RECORD} B per commit, median of ${runs} interleaved runs of ${ms} ms (records/s):\n` +
  `  floor, pre-written file:  ${fmt(m.prewritten)}\n` +
  `  floor, appending:         ${fmt(m.fresh)}\n` +
  `  writeahead appendBatch:   ${fmt(m.writeahead)}  = ${(m.writeahead / m.prewritten).toFixed(2)}x the pre-written floor, ${(m.writeahead / m.fresh).toFixed(2)}x the appending one\n`)
