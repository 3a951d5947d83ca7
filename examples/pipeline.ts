// Node streams in and out of the log: `node dist/examples/pipeline.js [file]`.
//
// pipeline(source, wal.writable(p)) from a file (each line one record; by default this example's
// own source) and from an async generator, then pipeline(wal.readable(p), transform, writable) to
// read it back. pipeline() resolves only once everything written is durable.
import fs from 'node:fs'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { pipeline } from 'node:stream/promises'
import { Readable, Transform, Writable } from 'node:stream'
import { WalError, WriteAhead, type WalRecord } from 'writeahead'

const DIR = process.env.WRITEAHEAD_DIR ?? './data-pipeline'
const FILE = process.argv[2] ?? fileURLToPath(import.meta.url)

async function main (): Promise<void> {
  const wal = await WriteAhead.open(DIR, { partitions: 2 })
  // close() on every path, errors included: it waits for the appends in flight and releases the
  // log's lock. (A process that just dies leaves a stale lock, which the next open takes over.)
  try {
    // 1. A file, line by line, into partition 0. Every chunk queued while a commit is in flight goes
    //    into the next commit (group commit), so this is fast even with fdatasync per commit.
    const fileStart = wal.offsets(0).end
    await pipeline(
      readline.createInterface({ input: fs.createReadStream(FILE), crlfDelay: Infinity }),
      async function * (lines: AsyncIterable<string>) {
        let n = 0
        for await (const line of lines) yield { key: `line-${++n}`, value: line, headers: [['file', FILE]] as Array<[string, string]> }
      },
      wal.writable(0)
    )
    const fileEnd = wal.offsets(0).end
    console.log(`file ${FILE}: ${fileEnd - fileStart} lines appended to partition 0 at offsets ${fileStart}..${fileEnd - 1}`)

    // 2. A generator into partition 1.
    async function * measurements (n: number): AsyncGenerator<string> {
      for (let i = 0; i < n; i++) yield JSON.stringify({ sensor: `s${i % 4}`, celsius: 20 + (i % 7) })
    }
    const genStart = wal.offsets(1).end
    await pipeline(Readable.from(measurements(1000)), wal.writable(1))
    console.log(`generator: ${wal.offsets(1).end - genStart} records appended to partition 1 at offsets ${genStart}..${wal.offsets(1).end - 1}`)

    // 3. Read the file back through a Transform: the first lines, numbered, with their offsets.
    const shown: string[] = []
    await pipeline(
      wal.readable(0, { from: fileStart, to: Math.min(fileEnd, fileStart + 5) }),
      new Transform({
        objectMode: true,
        transform (rec: WalRecord, _enc, cb) { cb(null, `  offset ${rec.offset} ${rec.key?.toString() ?? ''}: ${String(rec.value)}`) }
      }),
      new Writable({ objectMode: true, write (line: string, _enc, cb) { shown.push(line); cb() } })
    )
    console.log(`read back the first ${shown.length} lines:\n${shown.join('\n')}`)

    // 4. Aggregate partition 1 with an async iterator over batches (the fast path for replay).
    const sums = new Map<string, { n: number, total: number }>()
    for await (const batch of wal.iterateBatches(1, { from: genStart })) {
      for (const rec of batch) {
        const m = JSON.parse(String(rec.value)) as { sensor: string, celsius: number }
        const s = sums.get(m.sensor) ?? { n: 0, total: 0 }
        s.n++
        s.total += m.celsius
        sums.set(m.sensor, s)
      }
    }
    console.log('average per sensor: ' + [...sums].sort().map(([k, s]) => `${k} ${(s.total / s.n).toFixed(2)}`).join(', '))
  } finally {
    await wal.close()
  }
}

// An error (a file that does not exist, a full disk: DISK_FULL) ends the example with one line and
// exit code 1, once the log is closed. A failed pipeline() leaves a prefix of its records in the
// log, never a later record without an earlier one: wal.offsets(p).end tells how far it got.
main().catch((err: unknown) => {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}${WalError.is(err) ? ` (${err.code})` : ''}`)
  process.exitCode = 1
})
