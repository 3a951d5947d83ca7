import type { Command } from 'commander'
import { WriteAhead } from '../../index.js'
import { EXIT_CODES_HELP } from '../errors.js'
import { requireLog } from '../layout.js'
import { formatBytes, formatTime, table } from '../table.js'
import { out } from '../common.js'

export interface SegmentReport {
  file: string
  base: number
  /** One past the last offset the segment holds (null when the files do not tell). */
  end: number | null
  sealed: boolean
  /** Bytes of batch data. */
  bytes: number | null
  /** Bytes on disk, preallocated space included. */
  fileBytes: number
  minTimestamp: number | null
  maxTimestamp: number | null
}

export interface PartitionReport {
  partition: number
  start: number
  end: number
  bytes: number
  minTimestamp: number | null
  maxTimestamp: number | null
  segments: SegmentReport[]
}

export interface GroupReport { name: string, partitions: Array<{ partition: number, committed: number | null, end: number, lag: number }>, lag: number }

export interface InspectReport {
  dir: string
  partitions: PartitionReport[]
  groups: GroupReport[]
}

export function register (program: Command): void {
  program.command('inspect')
    .description('show partitions, segments, offsets, sizes, timestamps, consumer groups and lag')
    .argument('<dir>', 'log directory')
    .option('--json', 'the same data as JSON (timestamps in ms since the epoch)')
    .addHelpText('after', `
Opens the log read-only: safe while another process writes to it, and it shows exactly what that
writer has made durable. RECORDS is end - start (fewer if explicit offsets left gaps). Sizes are
bytes of batch data (ON DISK includes preallocated space). OLDEST and NEWEST are record timestamps
(OLDEST: the earliest first record of a batch; an older timestamp later in a batch is not seen).

Examples:
  $ writeahead inspect ./data
  $ writeahead inspect ./data --json | jq '.partitions[0].end'
${EXIT_CODES_HELP}`)
    .action(async (dir: string, o: { json?: boolean }) => {
      const report = await inspect(dir)
      await out(o.json === true ? JSON.stringify(report, null, 2) + '\n' : render(report))
    })
}

const minOf = (xs: Array<number | null>): number | null => xs.reduce<number | null>((m, x) => x === null ? m : m === null ? x : Math.min(m, x), null)
const maxOf = (xs: Array<number | null>): number | null => xs.reduce<number | null>((m, x) => x === null ? m : m === null ? x : Math.max(m, x), null)

export async function inspect (dir: string): Promise<InspectReport> {
  requireLog(dir)
  const wal = await WriteAhead.open(dir, { readOnly: true })
  try {
    const partitions: PartitionReport[] = []
    for (let p = 0; p < wal.partitions; p++) {
      const { start, end } = wal.offsets(p)
      const segments: SegmentReport[] = wal.segments(p).map((g) => ({
        file: g.file, base: g.base, end: g.end, sealed: g.sealed, bytes: g.bytes, fileBytes: g.fileBytes,
        minTimestamp: g.minTimestamp, maxTimestamp: g.maxTimestamp
      }))
      partitions.push({
        partition: p, start, end,
        bytes: segments.reduce((n, s) => n + (s.bytes ?? 0), 0),
        minTimestamp: minOf(segments.map((s) => s.minTimestamp)),
        maxTimestamp: maxOf(segments.map((s) => s.maxTimestamp)),
        segments
      })
    }
    const groups: GroupReport[] = wal.groups().map((g) => {
      const parts = g.partitions.map((x) => ({ partition: x.partition, committed: x.committed, end: partitions[x.partition]?.end ?? wal.offsets(x.partition).end, lag: x.lag }))
      return { name: g.name, partitions: parts, lag: parts.reduce((n, x) => n + x.lag, 0) }
    })
    return { dir, partitions, groups }
  } finally {
    await wal.close()
  }
}

function range (base: number, end: number | null): string {
  if (end === null) return `${base}..?`
  if (end <= base) return '(empty)'
  return `${base}..${end - 1}`
}

export function render (r: InspectReport): string {
  const total = r.partitions.reduce((n, p) => n + p.bytes, 0)
  let s = `log ${r.dir}: ${r.partitions.length} partition${r.partitions.length === 1 ? '' : 's'}, ${formatBytes(total)}, ${r.groups.length} group${r.groups.length === 1 ? '' : 's'}\n\n`
  s += table(['PARTITION', 'START', 'END', 'RECORDS', 'SEGMENTS', 'SIZE', 'OLDEST', 'NEWEST'],
    r.partitions.map((p) => [p.partition, p.start, p.end, p.end - p.start, p.segments.length, formatBytes(p.bytes), formatTime(p.minTimestamp), formatTime(p.maxTimestamp)]))
  s += '\nSegments\n'
  s += table(['PARTITION', 'SEGMENT', 'OFFSETS', 'SIZE', 'ON DISK', 'STATE', 'OLDEST', 'NEWEST'],
    r.partitions.flatMap((p) => p.segments.map((g) => [p.partition, g.file, range(g.base, g.end), formatBytes(g.bytes), formatBytes(g.fileBytes), g.sealed ? 'sealed' : 'open', formatTime(g.minTimestamp), formatTime(g.maxTimestamp)])), '  ')
  s += '\nGroups\n'
  if (r.groups.length === 0) s += '  (none)\n'
  else {
    s += table(['GROUP', 'PARTITION', 'COMMITTED', 'END', 'LAG'],
      r.groups.flatMap((g) => g.partitions.map((x) => [g.name, x.partition, x.committed, x.end, x.lag])), '  ')
  }
  return s
}
