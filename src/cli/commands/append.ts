import fs from 'node:fs'
import path from 'node:path'
import type { Command } from 'commander'
import { WalError, WriteAhead, type AppendInput, type SyncMode } from '../../index.js'
import { EXIT_CODES_HELP, usageError } from '../errors.js'
import { closeOnEpipe, out, parseEncoding, parseNonNegative, parsePositive, type Encoding } from '../common.js'

interface AppendOptions {
  partition: number
  json?: boolean
  encoding: Encoding
  partitions?: number
  segmentBytes?: number
  sync?: SyncMode
}

/** Batches waiting for their commit at once: enough to keep group commit busy, bounded memory. */
const MAX_IN_FLIGHT = 8
const MAX_RECORDS_PER_BATCH = 10_000

export function register (program: Command): void {
  program.command('append')
    .description('append lines (or JSON lines) from stdin to a partition; prints each acknowledged offset, one per input line')
    .argument('<dir>', 'log directory (created if missing)')
    .option('-p, --partition <n>', 'partition to append to', parseNonNegative, 0)
    .option('--json', 'each line is {"key", "value", "headers", "timestamp"} (only value is required)')
    .option('--encoding <enc>', 'how key, value and header values are written in the input: utf8, base64 or hex', parseEncoding, 'utf8')
    .option('--partitions <n>', 'create the log with (or grow it to) n partitions', parsePositive)
    .option('--segment-bytes <n>', 'segment size for this run (default 64 MiB)', parsePositive)
    .option('--sync <mode>', "when an append is acknowledged: always, interval or never (default always)")
    .addHelpText('after', `
Input is read line by line; every chunk of stdin becomes one atomic appendBatch (one commit), and
an offset is printed for every line once it is durable. A non-string "value" in --json input is
stored as its JSON text, and "value": null stores a tombstone. "headers" may be [{"key","value"}], [["key","value"]] or {"key": value}.

Examples:
  $ printf 'a\\nb\\nc\\n' | writeahead append ./data -p 0
  0
  1
  2
  $ echo '{"key":"user-1","value":"signed up","headers":[{"key":"source","value":"web"}]}' | writeahead append ./data -p 1 --json
${EXIT_CODES_HELP}`)
    .action(async (dir: string, o: AppendOptions) => { await runAppend(dir, o) })
}

const VALID: Record<Exclude<Encoding, 'utf8'>, RegExp> = {
  hex: /^(?:[0-9a-fA-F]{2})*$/,
  // Standard or URL-safe alphabet, padding optional: what Buffer.from(v, 'base64') reads whole.
  base64: /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$|^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}(?:==)?|[A-Za-z0-9_-]{3}=?)?$/
}

/** Buffer.from(v, 'hex' | 'base64') drops what it cannot read without a word: checked first. */
function bytesOf (v: string, encoding: Encoding, what: string, line: number): string | Buffer {
  if (encoding === 'utf8') return v
  if (!VALID[encoding].test(v)) throw new WalError('INVALID_RECORD', `line ${line}: ${what} is not valid ${encoding}`, { line })
  return Buffer.from(v, encoding)
}

function decode (v: unknown, encoding: Encoding, what: string, line: number): string | Buffer | null {
  if (v === null || v === undefined) return null
  if (typeof v !== 'string') throw new WalError('INVALID_RECORD', `line ${line}: ${what} must be a string`, { line })
  return bytesOf(v, encoding, what, line)
}

function parseLine (text: string, line: number, o: AppendOptions): AppendInput {
  if (o.json !== true) return bytesOf(text, o.encoding, 'the line', line)
  let obj: unknown
  try {
    obj = JSON.parse(text)
  } catch (err) {
    throw new WalError('INVALID_RECORD', `line ${line}: invalid JSON: ${(err as Error).message}`, { line })
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new WalError('INVALID_RECORD', `line ${line}: expected a JSON object with a "value"`, { line })
  const r = obj as Record<string, unknown>
  if (!('value' in r) || r.value === undefined) throw new WalError('INVALID_RECORD', `line ${line}: "value" is missing (null for a tombstone)`, { line })
  const value = r.value === null ? null : typeof r.value === 'string' ? decode(r.value, o.encoding, 'value', line) as string | Buffer : JSON.stringify(r.value)
  const input: Record<string, unknown> = { value }
  if (r.key !== undefined && r.key !== null) input.key = decode(r.key, o.encoding, 'key', line)
  if (r.timestamp !== undefined && r.timestamp !== null) input.timestamp = r.timestamp
  if (r.headers !== undefined && r.headers !== null) input.headers = decodeHeaders(r.headers, o.encoding, line)
  return input as unknown as AppendInput
}

function decodeHeaders (h: unknown, encoding: Encoding, line: number): unknown {
  if (encoding === 'utf8') return h
  const dec = (v: unknown): unknown => decode(v, encoding, 'a header value', line)
  if (Array.isArray(h)) {
    return h.map((e: unknown) => Array.isArray(e) ? [e[0], dec(e[1])] : (e !== null && typeof e === 'object') ? { ...e, value: dec((e as { value?: unknown }).value) } : e)
  }
  if (typeof h === 'object' && h !== null) {
    return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, Array.isArray(v) ? v.map(dec) : dec(v)]))
  }
  return h
}

/**
 * Input lines are UTF-8. A decoder that replaces what it cannot read (StringDecoder, toString)
 * would store U+FFFD for binary input without a word: refused instead, naming the line.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

function lineText (bytes: Buffer, line: number): string {
  const end = bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length // CRLF input
  try {
    return utf8.decode(bytes.subarray(0, end))
  } catch {
    throw new WalError('INVALID_RECORD', `line ${line}: not valid UTF-8 (for binary data, write it as --encoding base64 or hex)`, { line })
  }
}

interface Pending { first: number, count: number, result: Promise<number> }

async function runAppend (dir: string, o: AppendOptions): Promise<void> {
  if (o.sync !== undefined && !['always', 'interval', 'never'].includes(o.sync)) throw usageError(`--sync must be always, interval or never, got ${o.sync}`)
  // A new log would be created, then the append refused: nothing should be left behind. (A path
  // that holds something else is open()'s to refuse, as NOT_A_WAL.)
  const creates = !fs.existsSync(dir) || (fs.statSync(dir).isDirectory() && fs.readdirSync(dir).length === 0)
  if (creates && o.partition >= (o.partitions ?? 1)) {
    throw new WalError('UNKNOWN_PARTITION', `partition ${o.partition} of a new log: it is created with --partitions ${o.partitions ?? 1}; pass --partitions ${o.partition + 1} or more`, { partition: o.partition })
  }
  const wal = await WriteAhead.open(dir, {
    ...(o.partitions === undefined ? {} : { partitions: o.partitions }),
    ...(o.segmentBytes === undefined ? {} : { segmentBytes: o.segmentBytes }),
    ...(o.sync === undefined ? {} : { sync: o.sync })
  })
  closeOnEpipe(() => wal.close())
  try {
    const p = o.partition
    wal.offsets(p) // UNKNOWN_PARTITION before reading any input
    const limit = Math.max(1, Math.floor(wal.options.maxBatchBytes / 2))
    const inFlight: Pending[] = []
    let lineNo = 0
    let acknowledged = 0
    const appended = (): string => ` (${acknowledged} earlier line${acknowledged === 1 ? '' : 's'} appended)`

    // Offsets are printed in input order, as each batch becomes durable.
    const settleOldest = async (): Promise<void> => {
      const b = inFlight.shift() as Pending
      let first: number
      try {
        first = await b.result
      } catch (err) {
        // Later batches may still be in flight: let them settle before reporting.
        await Promise.allSettled(inFlight.map((x) => x.result))
        let where = b.count === 1 ? `line ${b.first}` : `lines ${b.first}-${b.first + b.count - 1}`
        let why = (err as Error).message
        // The engine names a bad record by its index in the batch ("record 2 of the batch"), which
        // the user never saw: name its input line instead.
        const index = WalError.is(err) ? err.details.index : undefined
        if (typeof index === 'number' && index >= 0 && index < b.count) {
          where = `line ${b.first + index}`
          const placed = ` (record ${index} of the batch)`
          if (why.endsWith(placed)) why = why.slice(0, -placed.length)
        }
        const msg = `${where}: ${why}${appended()}`
        throw WalError.is(err) ? new WalError(err.code, msg, err.details, err) : err
      }
      let text = ''
      for (let i = 0; i < b.count; i++) text += `${first + i}\n`
      acknowledged += b.count
      await out(text)
    }
    const submit = async (inputs: AppendInput[], firstLine: number): Promise<void> => {
      inFlight.push({ first: firstLine, count: inputs.length, result: wal.appendBatch(p, inputs) })
      // A rejection is handled when its turn to print comes; never leave it unhandled meanwhile.
      inFlight[inFlight.length - 1].result.catch(() => {})
      while (inFlight.length >= MAX_IN_FLIGHT) await settleOldest()
    }
    const flushLines = async (lines: Buffer[]): Promise<void> => {
      let batch: AppendInput[] = []
      let bytes = 0
      let batchFirst = lineNo + 1
      for (const raw of lines) {
        let input: AppendInput
        try {
          const line = ++lineNo
          input = parseLine(lineText(raw, line), line, o)
        } catch (err) {
          // Everything before the bad line is appended and its offsets printed; then stop.
          if (batch.length > 0) await submit(batch, batchFirst)
          while (inFlight.length > 0) await settleOldest()
          throw WalError.is(err) ? new WalError(err.code, err.message + appended(), err.details, err) : err
        }
        const size = raw.length + 64
        if (batch.length > 0 && (bytes + size > limit || batch.length >= MAX_RECORDS_PER_BATCH)) {
          await submit(batch, batchFirst)
          batch = []
          bytes = 0
          batchFirst = lineNo
        }
        batch.push(input)
        bytes += size
      }
      if (batch.length > 0) await submit(batch, batchFirst)
    }

    // Split on bytes, decode per line: a bad line is named exactly. A line longer than a chunk
    // is kept as its pieces, joined once its end arrives.
    let partial: Buffer[] = []
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      const lines: Buffer[] = []
      let at = 0
      for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, at)) {
        const piece = chunk.subarray(at, nl)
        lines.push(partial.length === 0 ? piece : Buffer.concat([...partial, piece]))
        partial = []
        at = nl + 1
      }
      if (at < chunk.length) partial.push(chunk.subarray(at))
      await flushLines(lines)
    }
    if (partial.length > 0) await flushLines([Buffer.concat(partial)])
    while (inFlight.length > 0) await settleOldest()
  } finally {
    await wal.close()
  }
}
