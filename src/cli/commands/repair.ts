import path from 'node:path'
import readline from 'node:readline/promises'
import type { Command } from 'commander'
import { WriteAhead } from '../../index.js'
import { CliError, EXIT, EXIT_CODES_HELP } from '../errors.js'
import { requireLog } from '../layout.js'
import { formatBytes, printable } from '../table.js'
import { out } from '../common.js'
import { describe, locate, verifyWithProgress } from './verify.js'

export function register (program: Command): void {
  program.command('repair')
    .description('keep the valid prefix of damaged partitions; what is cut off is moved to <dir>/quarantine/, never deleted')
    .argument('<dir>', 'log directory (no writer may hold it)')
    .option('-y, --yes', 'do not ask for confirmation (required when stdin is not a terminal)')
    .addHelpText('after', `
First verifies the log. If it is damaged, shows what would be cut and asks for confirmation (y/N)
on a terminal; without a terminal it refuses unless --yes is given. For each damaged partition
the bytes from the first invalid batch on, and every later segment, are copied to
<dir>/quarantine/<partition>-<time>/ and only then cut from the log. Offsets from the cut on will be
assigned again by later appends. Finally verifies again.

Examples:
  $ writeahead repair ./data
  $ writeahead repair ./data --yes
${EXIT_CODES_HELP}`)
    .action(async (dir: string, o: { yes?: boolean }) => {
      requireLog(dir)
      const before = await verifyWithProgress(dir, false)
      if (before.ok) {
        await out('nothing to repair: the log verifies clean\n')
        return
      }
      const problems = locate(dir, before.problems)
      await out(`found ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n` + problems.map((pr) => `  ${describe(dir, pr)}\n`).join(''))
      if (o.yes !== true) {
        if (process.stdin.isTTY !== true) {
          throw new CliError('INVALID_ARGUMENT', 'repair cuts data from the log: pass --yes to confirm (stdin is not a terminal to ask on); nothing was changed')
        }
        const rl = readline.createInterface({ input: process.stdin, output: process.stderr })
        const answer = await rl.question(`cut the damaged data and move it to ${path.join(dir, 'quarantine')}? [y/N] `)
        rl.close()
        if (!/^y(es)?$/i.test(answer.trim())) {
          await out('aborted: nothing was changed\n')
          process.exitCode = EXIT.PROBLEM
          return
        }
      }
      const actions = await WriteAhead.salvage(dir)
      for (const a of actions) {
        const where = a.partition === 'meta' ? 'meta log' : `partition ${a.partition}`
        await out(`${where}: cut segment ${a.segment} at byte ${a.position} (${a.reason}); offsets from ${a.offset} on are gone from the log; ${formatBytes(a.bytes)} moved to quarantine:\n` +
          a.quarantined.map((q) => `  ${q}\n`).join('') +
          (a.groupsMoved ?? []).map((g) => `group ${printable(g)} was past the cut: moved back to offset ${a.offset}\n`).join(''))
      }
      const after = await WriteAhead.verify(dir)
      if (after.ok) {
        await out(`repaired: the log verifies clean (${after.segments} segments, ${formatBytes(after.bytes)})\n`)
      } else {
        await out(locate(dir, after.problems).map((pr) => `still damaged: ${describe(dir, pr)}\n`).join(''))
        throw new CliError('CORRUPTED', 'the log is still damaged after repair', EXIT.PROBLEM)
      }
    })
}
