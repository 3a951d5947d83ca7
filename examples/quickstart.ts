// writeahead in one minute: `npm start` (or `node dist/examples/quickstart.js`).
//
// Opens a log with 4 partitions in ./data (or $WRITEAHEAD_DIR), streams generated events into
// every partition with pipeline(source, wal.writable(p)), and meanwhile a consumer group tails
// each partition live and commits what it processed. Run it again: the data is still there and
// the group resumes from its committed offsets. $QUICKSTART_RECORDS sets how many records each
// partition gets (default 5000; 0 writes none, and the group consumes only what it has not yet).
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { performance } from 'node:perf_hooks'
import { WalError, WriteAhead, type WalRecord } from 'writeahead'

const DIR = process.env.WRITEAHEAD_DIR ?? './data'
const PARTITIONS = 4
const RECORDS = process.env.QUICKSTART_RECORDS ?? '5000'
if (!/^\d+$/.test(RECORDS) || !Number.isSafeInteger(Number(RECORDS))) {
  console.error(`error: QUICKSTART_RECORDS must be a number of records per partition (0 or more), got ${JSON.stringify(RECORDS)}`)
  process.exit(2)
}
const PER_PARTITION = Number(RECORDS)
const GROUP = 'quickstart'

function * events (p: number, n: number): Generator<{ key: string, value: string, headers: Array<[string, string]> }> {
  for (let i = 0; i < n; i++) {
    const user = `user-${(i * 7 + p) % 100}`
    yield { key: user, value: JSON.stringify({ type: i % 10 === 0 ? 'signup' : 'click', user, n: i }), headers: [['source', 'quickstart']] }
  }
}

async function main (): Promise<void> {
  const wal = await WriteAhead.open(DIR, { partitions: PARTITIONS })
  let consumers: Array<Promise<void>> = []
  try {
    console.log(`opened ${DIR}: ${wal.partitions} partitions`)
    const group = wal.group(GROUP)
    const before = Array.from({ length: PARTITIONS }, (_, p) => wal.offsets(p))
    for (let p = 0; p < PARTITIONS; p++) {
      const committed = group.committed(p)
      console.log(committed === null
        ? `partition ${p}: ${before[p].end} records on disk; group ${GROUP} is new, starting at the earliest offset ${before[p].start}`
        : `partition ${p}: ${before[p].end} records on disk; resuming group ${GROUP} at offset ${committed} (lag ${group.lag(p)})`)
    }

    // The consumers start first and tail live: they see each record once it is durable.
    const targets = before.map((o) => o.end + PER_PARTITION)
    const consumed = new Array<number>(PARTITIONS).fill(0)
    const signups = new Set<string>()
    async function consume (p: number): Promise<void> {
      // Already at the target (nothing written, nothing missed): a live reader would wait for ever.
      if ((group.committed(p) ?? before[p].start) >= targets[p]) return
      const rs = wal.readable(p, { group: GROUP, live: true })
      for await (const chunk of rs) {
        const rec = chunk as WalRecord
        const event = JSON.parse(String(rec.value)) as { type: string, user: string } // "process" the record
        if (event.type === 'signup') signups.add(event.user)
        consumed[p]++
        if (consumed[p] % 1000 === 0) await rs.commit() // commit after processing: at-least-once
        if (rec.offset + 1 >= targets[p]) {
          await rs.commit()
          break // releases the reader and the group's lease
        }
      }
    }

    const t0 = performance.now()
    consumers = Array.from({ length: PARTITIONS }, (_, p) => consume(p))
    // Handled now, awaited below: a consumer failing while the writers run must not end the
    // process as an unhandled rejection before the log is closed.
    for (const c of consumers) c.catch(() => {})
    await Promise.all(Array.from({ length: PARTITIONS }, (_, p) => pipeline(Readable.from(events(p, PER_PARTITION)), wal.writable(p))))
    const writeMs = performance.now() - t0
    const written = PARTITIONS * PER_PARTITION
    console.log(`wrote ${written} records in ${writeMs.toFixed(0)} ms: ${Math.round(written / (writeMs / 1000))} records/s, every one durable (fdatasync) before pipeline() resolved`)
    for (let p = 0; p < PARTITIONS; p++) {
      const appended = PER_PARTITION === 0 ? 'nothing appended' : `offsets ${before[p].end}..${wal.offsets(p).end - 1} appended`
      console.log(`partition ${p}: ${appended}; group lag right after writing: ${group.lag(p)}`)
    }

    await Promise.all(consumers)
    const totalMs = performance.now() - t0
    const total = consumed.reduce((a, b) => a + b, 0)
    console.log(`group ${GROUP} consumed ${total} records (${consumed.join(' + ')}) in ${totalMs.toFixed(0)} ms; ${signups.size} distinct users signed up`)
    for (let p = 0; p < PARTITIONS; p++) console.log(`partition ${p}: committed ${group.committed(p)}, end ${wal.offsets(p).end}, lag ${group.lag(p)}`)
  } finally {
    // Also after an error: close() ends the live consumers, which would otherwise wait for
    // records that never come, and releases the log's lock.
    await wal.close()
    await Promise.allSettled(consumers)
  }
  console.log(`closed. Run it again to resume, or look inside: npx writeahead inspect ${DIR}`)
}

// An error (a full disk: DISK_FULL, a log another process holds: LOCKED) ends the example with one
// line and exit code 1, once the log is closed.
main().catch((err: unknown) => {
  console.error(`error: ${err instanceof Error ? err.message : String(err)}${WalError.is(err) ? ` (${err.code})` : ''}`)
  process.exitCode = 1
})
