import path from 'node:path'
import type { Command } from 'commander'
import cliProgress from 'cli-progress'
import { WriteAhead, type VerifyProblem, type VerifyReport } from '../../index.js'
import { CliError, EXIT, EXIT_CODES_HELP } from '../errors.js'
import { requireLog } from '../layout.js'
import { formatBytes } from '../table.js'
import { out } from '../common.js'

export type LocatedProblem = VerifyProblem

/** The engine's report already carries the offset range and the later segments. */
export function locate (_dir: string, problems: VerifyProblem[]): LocatedProblem[] {
  return problems
}

export function describe (dir: string, pr: LocatedProblem): string {
  const where = pr.partition === 'meta' ? 'meta log' : `partition ${pr.partition}`
  const range = pr.endOffset === null || pr.endOffset <= pr.offset ? `offsets from ${pr.offset} on` : `offsets ${pr.offset}..${pr.endOffset - 1}`
  const later = pr.laterSegments === 0 ? '' : ` (and ${pr.laterSegments} later segment${pr.laterSegments === 1 ? '' : 's'})`
  const file = path.join(pr.partition === 'meta' ? 'meta' : `partition-${pr.partition}`, pr.segment)
  return `${where}, segment ${pr.segment}, byte ${pr.position}: ${pr.reason}; ${range} affected${later} [${path.join(dir, file)}]`
}

const count = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`

export async function verifyWithProgress (dir: string, quiet: boolean): Promise<VerifyReport> {
  // The bar leaves the terminal's modes alone (cli-progress's default turns line wrapping off, and
  // hideCursor the cursor): the scan is synchronous, so Ctrl-C ends the process on the spot, and
  // nothing would turn them back on. 20 columns of bar keep the line within 80 while it wraps.
  const bar = !quiet && process.stderr.isTTY
    ? new cliProgress.SingleBar({ format: 'verifying [{bar}] {percentage}% | {done} of {size} | ETA {eta}s', stream: process.stderr, barsize: 20, hideCursor: false, linewrap: true, clearOnComplete: true }, cliProgress.Presets.shades_classic)
    : null
  let started = false
  try {
    return await WriteAhead.verify(dir, {
      onProgress: (done, total) => {
        if (bar === null) return
        const payload = { done: formatBytes(done), size: formatBytes(total) }
        if (!started) { bar.start(Math.max(1, total), done, payload); started = true } else bar.update(done, payload)
      }
    })
  } finally {
    if (started) bar?.stop()
  }
}

export function register (program: Command): void {
  program.command('verify')
    .description('check every checksum of every segment (read-only); exit 1 when something is corrupted')
    .argument('<dir>', 'log directory')
    .option('--json', 'print the report as JSON')
    .option('-q, --quiet', 'no progress bar (it is only drawn on a terminal anyway)')
    .addHelpText('after', `
Reads every segment of every partition and the meta log, checks each batch's CRC32C, each record's
structure and each seal. Never writes; safe while a writer runs. A problem names the partition,
segment file, byte position and the offsets from there on; \`writeahead repair\` keeps the valid
prefix and moves the rest to <dir>/quarantine/. Records are counted apart: the partitions' (what
the log holds) and the meta log's (the log's options and group cursor commits); --json gives both,
as partitionRecords and metaRecords, and their sum as records.

Examples:
  $ writeahead verify ./data
  ok: 4 partitions, 9 segments (meta log included), 12.3 MiB of data, 200000 records and 12 meta log records checked
  $ writeahead verify ./data --json
${EXIT_CODES_HELP}`)
    .action(async (dir: string, o: { json?: boolean, quiet?: boolean }) => {
      requireLog(dir)
      const report = await verifyWithProgress(dir, o.quiet === true || o.json === true)
      const problems = locate(dir, report.problems)
      if (o.json === true) {
        await out(JSON.stringify({ ...report, problems }, null, 2) + '\n')
      } else {
        const summary = `${count(report.partitions, 'partition')}, ${count(report.segments, 'segment')} (meta log included), ${formatBytes(report.dataBytes)} of data, ${count(report.partitionRecords, 'record')} and ${count(report.metaRecords, 'meta log record')} checked`
        if (report.ok) await out(`ok: ${summary}\n`)
        else {
          await out(`CORRUPTED: ${problems.length} problem${problems.length === 1 ? '' : 's'} in ${summary}\n` +
            problems.map((pr) => `  ${describe(dir, pr)}\n`).join('') +
            `run \`writeahead repair ${dir}\` to keep the valid prefix (what is cut goes to ${path.join(dir, 'quarantine')})\n`)
        }
      }
      if (!report.ok) throw new CliError('CORRUPTED', 'verify found corruption', EXIT.PROBLEM)
    })
}
