import fs from 'node:fs'
import path from 'node:path'
import type { Command } from 'commander'
import { WriteAhead, type WalRecord } from '../../index.js'
import { EXIT_CODES_HELP, usageError } from '../errors.js'
import { requireLog } from '../layout.js'
import { ISO_TIME_HELP, closeOnEpipe, parseEncoding, parseIsoTime, parseNonNegative, parsePositive, recordJSON, valueText, type Encoding } from '../common.js'

interface TailOptions {
  partition: number
  from?: string
  follow?: boolean
  group?: string
  json?: boolean
  encoding: Encoding
  limit?: number
}

type From = 'earliest' | 'latest' | 'committed' | number | { timestamp: number }

export function parseFrom (s: string): From {
  if (s === 'earliest' || s === 'latest' || s === 'committed') return s
  if (/^\d+$/.test(s)) {
    const n = Number(s)
    if (!Number.isSafeInteger(n)) throw usageError(`--from offset ${s} is too large`)
    return n
  }
  const ms = parseIsoTime(s)
  if (ms === null) throw usageError(`--from must be earliest, latest, committed, an offset or an ISO time, got '${s}'`)
  return { timestamp: ms }
}

export function register (program: Command): void {
  program.command('tail')
    .description('print the records of a partition; --follow keeps printing new ones as they become durable')
    .argument('<dir>', 'log directory')
    .option('-p, --partition <n>', 'partition to read', parseNonNegative, 0)
    .option('--from <position>', "earliest, latest, committed (needs --group), an offset (a non-negative integer), or an ISO-8601 time (below; the first record at or after it); default: the group's committed offset, else earliest")
    .option('-f, --follow', 'keep tailing until SIGINT/SIGTERM')
    .option('-g, --group <name>', "read as a consumer group; what it wrote to stdout is committed when it ends, not when stdout closes first (below; takes the log's write lock)")
    .option('-n, --limit <n>', 'stop after n records', parsePositive)
    .option('--json', 'one JSON object per record: partition, offset, timestamp, key, value, headers')
    .option('--encoding <enc>', 'how key, value and header values are printed: utf8, base64 or hex', parseEncoding, 'utf8')
    .addHelpText('after', `
Without --json each record's value is printed as one line (a tombstone, a null value, as an empty
line; --json prints "value": null). Without --group the log is opened
read-only, so tail follows a log that another process is writing. With --group it needs the write
lock (group cursors live in the log), so no other writer may run; when it ends (end of log,
--limit, SIGINT or SIGTERM) it commits the offset after the last record it wrote to stdout. Written
is not read: records wait in a pipe's buffer, and are committed if tail ends while the pipe is
still open, even if the reader then stops without reading them. If the reader closes the pipe
first (EPIPE), tail exits 0 and commits nothing: the next run starts again from the previous
commit (at least once). So \`tail --group g | head -1\` commits a short log whole, or nothing,
depending on which of the two ends first.

--from takes a time as ISO-8601, ${ISO_TIME_HELP}:
a date (2026-01-31, midnight UTC) or a date and time (2026-01-31T09:30, 2026-01-31T09:30:00.250Z,
2026-01-31T09:30:00+01:00); a time without Z or an offset is local time. Anything else, such as -1
or 1.5, is an error.

Examples:
  $ writeahead tail ./data -p 0 --from earliest
  $ writeahead tail ./data -p 2 --from 2026-01-31T00:00:00Z --json
  $ writeahead tail ./data -p 0 --follow --group billing
${EXIT_CODES_HELP}`)
    .action(async (dir: string, o: TailOptions) => { await runTail(dir, o) })
}

async function runTail (dir: string, o: TailOptions): Promise<void> {
  const from = o.from === undefined ? undefined : parseFrom(o.from)
  requireLog(dir)
  const group = o.group
  const wal = await WriteAhead.open(dir, group === undefined ? { readOnly: true } : {})
  const cleanups: Array<() => void> = []
  // On EPIPE the log closes under the reader: set first, so that ending it is no error, and the
  // commit below, if reached, is refused (CLOSED) as the log is already closing.
  let stopping = false
  closeOnEpipe(async () => { stopping = true; await wal.close() })
  try {
    const p = o.partition
    wal.offsets(p) // UNKNOWN_PARTITION early
    const rs = wal.readable(p, { ...(from === undefined ? {} : { from }), ...(group === undefined ? {} : { group }), live: o.follow === true })

    if (o.follow === true) {
      // A live reader waits on the append path, which holds no handle: keep the process alive.
      const keepAlive = setInterval(() => {}, 1 << 30)
      cleanups.push(() => clearInterval(keepAlive))
    }
    if (o.follow === true && group === undefined) {
      // A read-only log sees another process's commits only when it looks: look whenever the
      // partition directory changes (the writer rewrites its `durable` mark after each commit),
      // and once a second in case the file system does not report changes.
      const look = (): void => { try { wal.offsets(p) } catch {} }
      try {
        const watcher = fs.watch(path.join(dir, `partition-${p}`), look)
        watcher.on('error', () => {})
        cleanups.push(() => watcher.close())
      } catch {}
      const timer = setInterval(look, 1000)
      cleanups.push(() => clearInterval(timer))
    }

    let next = -1
    let printed = 0
    await new Promise<void>((resolve, reject) => {
      const stop = (): void => { stopping = true; resolve() }
      for (const sig of ['SIGINT', 'SIGTERM'] as const) {
        process.on(sig, stop)
        cleanups.push(() => process.off(sig, stop))
      }
      rs.on('data', (data: unknown) => {
        const rec = data as WalRecord
        if (stopping) return
        const ok = process.stdout.write((o.json === true ? recordJSON(rec, o.encoding) : valueText(rec, o.encoding)) + '\n')
        next = rec.offset + 1
        printed++
        if (o.limit !== undefined && printed >= o.limit) return stop()
        if (!ok) {
          rs.pause()
          process.stdout.once('drain', () => rs.resume())
        }
      })
      rs.on('end', stop)
      rs.on('error', (err: Error) => { if (!stopping) reject(err) })
    })
    for (const c of cleanups.splice(0)) c()
    if (group !== undefined && next >= 0 && wal.group(group).committed(p) !== next) await wal.group(group).commit(p, next)
    rs.destroy()
  } finally {
    for (const c of cleanups) c()
    await wal.close()
  }
}
